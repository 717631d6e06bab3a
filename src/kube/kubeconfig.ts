import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, resolve } from "node:path";
import * as v from "valibot";
import { parseYaml } from "../util/yaml.ts";
import { HttpRestClient } from "./http-client.ts";
import { rereadToken } from "./in-cluster.ts";
import type { FetcherFactory, RestClient, TlsOptions } from "./rest-client.ts";

/** The subset of a kubeconfig file this client understands. */
const KubeconfigSchema = v.object({
  "current-context": v.optional(v.string()),
  clusters: v.optional(v.array(v.object({
    name: v.string(),
    cluster: v.looseObject({
      server: v.string(),
      "certificate-authority": v.optional(v.string()),
      "certificate-authority-data": v.optional(v.string()),
      "insecure-skip-tls-verify": v.optional(v.boolean()),
    }),
  })), []),
  users: v.optional(v.array(v.object({
    name: v.string(),
    user: v.looseObject({
      "client-certificate": v.optional(v.string()),
      "client-certificate-data": v.optional(v.string()),
      "client-key": v.optional(v.string()),
      "client-key-data": v.optional(v.string()),
      token: v.optional(v.string()),
      tokenFile: v.optional(v.string()),
      exec: v.optional(v.unknown()),
      "auth-provider": v.optional(v.unknown()),
    }),
  })), []),
  contexts: v.optional(v.array(v.object({
    name: v.string(),
    context: v.looseObject({
      cluster: v.string(),
      user: v.optional(v.string()),
      namespace: v.optional(v.string()),
    }),
  })), []),
});

/** What a kubeconfig's current context resolves to: where the API server is and how to prove who we are. */
export interface ResolvedKubeconfig {
  path: string;
  context: string;
  server: string;
  namespace: string | undefined;
  tls: TlsOptions;
  /** The user's `token`, else the content of its `tokenFile` as read now. */
  token: string | undefined;
  /** The user's `tokenFile` (absolute), when its token comes from one: {@link kubeconfigClient} reads it again as it rotates. */
  tokenFile?: string;
}

/** The kubeconfig path kubectl would use: an explicit one, else `$KUBECONFIG` (first entry), else `~/.kube/config`. */
export function kubeconfigPath(explicit?: string, env: Record<string, string | undefined> = process.env): string {
  return explicit || env.KUBECONFIG?.split(":").find(Boolean) || resolve(homedir(), ".kube", "config");
}

/** Reads a kubeconfig and resolves its current context; errors say which file and which entry is wrong. */
export async function loadKubeconfig(path: string, contextName?: string): Promise<ResolvedKubeconfig> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new Error(`cannot read kubeconfig ${path}: ${(error as Error).message}`);
  }
  const parsed = v.safeParse(KubeconfigSchema, await parseYaml(text));
  if (!parsed.success) {
    const issue = parsed.issues[0];
    throw new Error(`kubeconfig ${path} is invalid at ${v.getDotPath(issue) ?? "(root)"}: ${issue.message}`);
  }
  const config = parsed.output;
  const name = contextName || config["current-context"];
  if (!name) throw new Error(`kubeconfig ${path} has no current-context`);
  const context = config.contexts.find((entry) => entry.name === name)?.context;
  if (!context) throw new Error(`kubeconfig ${path}: context "${name}" not found`);
  const cluster = config.clusters.find((entry) => entry.name === context.cluster)?.cluster;
  if (!cluster) throw new Error(`kubeconfig ${path}: cluster "${context.cluster}" of context "${name}" not found`);
  const user = config.users.find((entry) => entry.name === context.user)?.user ?? {};
  if (user.exec || user["auth-provider"]) {
    throw new Error(`kubeconfig ${path}: user "${context.user}" uses an exec or auth-provider plugin, which this client does not run; use a token or client certificate`);
  }

  const base = dirname(path);
  const pem = (data: string | undefined, file: string | undefined) =>
    data ? Promise.resolve(Buffer.from(data, "base64").toString("utf8"))
      : file ? readFile(resolve(base, file), "utf8") : Promise.resolve(undefined);
  const tokenFile = user.token === undefined && user.tokenFile ? resolve(base, user.tokenFile) : undefined;
  const [ca, cert, key, tokenFromFile] = await Promise.all([
    pem(cluster["certificate-authority-data"], cluster["certificate-authority"]),
    pem(user["client-certificate-data"], user["client-certificate"]),
    pem(user["client-key-data"], user["client-key"]),
    tokenFile ? readFile(tokenFile, "utf8") : undefined,
  ]);
  return {
    path,
    context: name,
    server: cluster.server,
    namespace: context.namespace,
    tls: { ca, cert, key, insecureSkipVerify: cluster["insecure-skip-tls-verify"] },
    token: user.token ?? tokenFromFile?.trim(),
    ...(tokenFile ? { tokenFile } : {}),
  };
}

/**
 * A {@link RestClient} for a kubeconfig's current context. A `tokenFile` is read again every minute
 * (`tokenRefreshMs`), as the in-cluster client does: projected tokens rotate.
 */
export async function kubeconfigClient(
  path: string,
  fetcherFor: FetcherFactory,
  options: { timeoutMs?: number; tokenRefreshMs?: number } = {},
): Promise<HttpRestClient & RestClient> {
  const config = await loadKubeconfig(path);
  const token = config.tokenFile ? await rereadToken(config.tokenFile, options.tokenRefreshMs) : () => config.token;
  return new HttpRestClient({
    server: config.server,
    fetcher: fetcherFor(config.tls),
    token,
    timeoutMs: options.timeoutMs,
  });
}
