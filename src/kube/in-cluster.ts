import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { HttpRestClient } from "./http-client.ts";
import type { FetcherFactory } from "./rest-client.ts";

const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** Bound service-account tokens rotate (about hourly); re-reading this often keeps us well inside their life. */
const TOKEN_REFRESH_MS = 60_000;

/**
 * A token read from `path`, read again once `refreshMs` have passed since the last read: projected and bound
 * service-account tokens rotate, and the kubelet (or whoever mounts them) rewrites the file.
 */
export async function rereadToken(path: string, refreshMs = TOKEN_REFRESH_MS): Promise<() => Promise<string>> {
  let token = (await readFile(path, "utf8")).trim();
  let readAt = performance.now();
  return async () => {
    if (performance.now() - readAt >= refreshMs) {
      readAt = performance.now();
      token = (await readFile(path, "utf8")).trim();
    }
    return token;
  };
}

/** Whether this process runs in a pod with a mounted service account. */
export function isInCluster(env: Record<string, string | undefined> = process.env, dir = SERVICE_ACCOUNT_DIR): boolean {
  return Boolean(env.KUBERNETES_SERVICE_HOST) && existsSync(`${dir}/token`);
}

/** A client authenticated as the pod's service account, reading its token again when the kubelet rotates it. */
export async function inClusterClient(
  fetcherFor: FetcherFactory,
  options: { timeoutMs?: number; env?: Record<string, string | undefined>; dir?: string; tokenRefreshMs?: number } = {},
): Promise<HttpRestClient> {
  const env = options.env ?? process.env;
  const dir = options.dir ?? SERVICE_ACCOUNT_DIR;
  const host = env.KUBERNETES_SERVICE_HOST;
  if (!host) throw new Error("KUBERNETES_SERVICE_HOST is not set: not running in a cluster");
  const port = env.KUBERNETES_SERVICE_PORT || "443";
  const ca = await readFile(`${dir}/ca.crt`, "utf8");

  const currentToken = await rereadToken(`${dir}/token`, options.tokenRefreshMs);

  const hostPart = host.includes(":") ? `[${host}]` : host;
  return new HttpRestClient({
    server: `https://${hostPart}:${port}`,
    fetcher: fetcherFor({ ca }),
    token: currentToken,
    timeoutMs: options.timeoutMs,
  });
}
