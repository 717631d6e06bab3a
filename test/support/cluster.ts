/**
 * Access to the local cluster (`npm run cluster -- up`) for e2e tests: an admin client built from the
 * service's own REST client, and helpers to make and clean up a routed namespace.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Pod } from "kubernetes-types/core/v1";
import { KubeApiError } from "../../src/kube/errors.ts";
import type { HttpRestClient } from "../../src/kube/http-client.ts";
import type { RestClient } from "../../src/kube/rest-client.ts";
import { getPod, listPods as listPodsIn } from "../../src/kube/pods.ts";
import { kubeconfigClient } from "../../src/kube/kubeconfig.ts";
import { fetcherFactory } from "./runtime.ts";

export const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** What `npm run cluster -- env` exports. */
export type ClusterEnv = Record<string, string> & { KUBECONFIG: string; KUBECTL: string; KUBE_CA_FILE: string };

let envCache: ClusterEnv | undefined;

/**
 * The local cluster as `npm run cluster -- env` describes it (KUBECONFIG, KUBECTL, KUBE_CA_FILE, …): the one way
 * every test finds the cluster, so PGW_STATE_DIR and the port variables are honoured everywhere.
 * Fails loudly (never skips) when the cluster is not up.
 */
export function clusterEnv(): ClusterEnv {
  if (envCache) return envCache;
  const printed = execFileSync("bash", [resolve(repo, "cluster/cluster.sh"), "env"], { encoding: "utf8" });
  const env: Record<string, string> = {};
  for (const match of printed.matchAll(/^export ([A-Z_]+)=(.*)$/gm)) env[match[1]!] = match[2]!.replace(/^['"]|['"]$/g, "");
  if (!env.KUBECONFIG || !existsSync(env.KUBECONFIG)) {
    throw new Error(`no local cluster: ${env.KUBECONFIG ?? "its kubeconfig"} is missing; run \`npm run cluster -- up\` first`);
  }
  return (envCache = env as ClusterEnv);
}

/** Runs the cluster's kubectl (`input` on its stdin): its status and output; never throws for a failing command. */
export function kubectlRun(args: string[], input?: string) {
  const env = clusterEnv();
  return spawnSync(env.KUBECTL, args, { encoding: "utf8", input, env: { ...process.env, KUBECONFIG: env.KUBECONFIG } });
}

/** Runs the cluster's kubectl; throws with its stderr when it fails. */
export function kubectlOk(args: string[], input?: string): string {
  const result = kubectlRun(args, input);
  if (result.status !== 0) throw new Error(`kubectl ${args.join(" ")}: ${result.stderr}`);
  return result.stdout;
}

/** The admin kubeconfig of the local cluster. */
export function clusterKubeconfig(): string {
  return clusterEnv().KUBECONFIG;
}

/** Runs `npm run cluster -- <args>` (stop/start a component in fault tests). */
export function cluster(...args: string[]): string {
  return execFileSync("bash", [resolve(repo, "cluster/cluster.sh"), ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
}

let admin: Promise<HttpRestClient> | undefined;
export function adminClient(): Promise<HttpRestClient> {
  admin ??= fetcherFactory().then((factory) => kubeconfigClient(clusterKubeconfig(), factory));
  return admin;
}

/** A real token of a ServiceAccount (a TokenRequest), for `audience` when given, else for the API server. */
export async function serviceAccountToken(namespace: string, account: string, audience?: string): Promise<string> {
  const answer = await (await adminClient()).performRequest<{ status: { token: string } }>({
    method: "POST",
    path: `/api/v1/namespaces/${namespace}/serviceaccounts/${account}/token`,
    body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { expirationSeconds: 3600, ...(audience ? { audiences: [audience] } : {}) } },
  });
  return answer.status.token;
}

/**
 * A kubeconfig that is nothing but a real token of a ServiceAccount and the local cluster's CA (in a fresh
 * temporary folder, mode 0600): how a deployed workload authenticates. `remove` deletes it.
 */
export async function serviceAccountKubeconfig(namespace: string, account: string): Promise<{ kubeconfig: string; token: string; remove: () => void }> {
  const token = await serviceAccountToken(namespace, account);
  const ca = readFileSync(clusterEnv().KUBE_CA_FILE);
  const dir = mkdtempSync(join(tmpdir(), "pgw-sa-"));
  const kubeconfig = join(dir, "kubeconfig");
  writeFileSync(kubeconfig, JSON.stringify({
    apiVersion: "v1",
    kind: "Config",
    "current-context": "sa",
    clusters: [{ name: "local", cluster: { server: (await adminClient()).server, "certificate-authority-data": ca.toString("base64") } }],
    users: [{ name: account, user: { token } }],
    contexts: [{ name: "sa", context: { cluster: "local", user: account } }],
  }), { mode: 0o600 });
  return { kubeconfig, token, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A fresh namespace labelled for the pod-gateway webhooks (or not), deleted by the returned function. */
export async function routedNamespace(prefix: string, routed = true): Promise<{ name: string; remove: () => Promise<void> }> {
  const kube = await adminClient();
  const name = `${prefix}-${Math.random().toString(36).slice(2, 8)}`;
  await kube.performRequest({
    method: "POST",
    path: "/api/v1/namespaces",
    body: { apiVersion: "v1", kind: "Namespace", metadata: { name, labels: routed ? { "routed-gateway": "true" } : {} } },
  });
  // Pods need the namespace's default ServiceAccount. The controller-manager creates it, but can lag behind
  // right after an API server restart (fault tests make those); creating it ourselves is the same object.
  await kube.performRequest({
    method: "POST",
    path: `/api/v1/namespaces/${name}/serviceaccounts`,
    body: { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "default" } },
  }).catch((error) => {
    if (!(error instanceof KubeApiError && error.code === 409)) throw error;
  });
  return {
    name,
    remove: async () => {
      await kube.performRequest({ method: "DELETE", path: `/api/v1/namespaces/${name}` }).catch(() => {});
    },
  };
}

export async function getPodOrNull(namespace: string, name: string): Promise<Pod | null> {
  const kube = await adminClient();
  try {
    return await getPod(kube, namespace, name);
  } catch (error) {
    if (error instanceof KubeApiError && error.code === 404) return null;
    throw error;
  }
}

export async function listPods(namespace: string, labelSelector?: string): Promise<Pod[]> {
  const kube = await adminClient();
  return (await listPodsIn(kube, namespace, { labelSelector })).items;
}

/**
 * kwok's nodes take 110 pods each, like kubelets: raises every node's pod capacity so that `pods` more clients
 * fit (the scale-out test at full size, the scale bench).
 */
export async function makeRoomForPods(kube: RestClient, pods: number): Promise<void> {
  const nodes = await kube.performRequest<{ items: { metadata: { name: string } }[] }>({ method: "GET", path: "/api/v1/nodes" });
  const room = String(Math.ceil(pods / nodes.items.length) + 110);
  for (const node of nodes.items) {
    await kube.performRequest({
      method: "PATCH",
      path: `/api/v1/nodes/${node.metadata.name}/status`,
      contentType: "application/merge-patch+json",
      body: { status: { allocatable: { pods: room }, capacity: { pods: room } } },
    });
  }
}

/** Polls until `check` is true; fails with `what` after `timeoutMs`. */
export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** Which gateway routed a pod: the pod-gateway webhook puts its gateway's address into gateway-init. */
export function routedBy(pod: Pod): string[] {
  const init = pod.spec?.initContainers?.find((container) => container.name === "gateway-init");
  if (!init) return [];
  const text = JSON.stringify(init);
  return ["foo", "bar"].filter((gateway) => text.includes(`${gateway}-pod-gateway`));
}
