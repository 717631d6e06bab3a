import type { HttpRestClient } from "./http-client.ts";
import { inClusterClient, isInCluster } from "./in-cluster.ts";
import { kubeconfigClient, kubeconfigPath } from "./kubeconfig.ts";
import type { FetcherFactory } from "./rest-client.ts";

/** A client for the API server, and a description of where it points and how it authenticates (no secrets). */
export interface KubeConnection {
  kube: HttpRestClient;
  describe: string;
}

/**
 * The service account when running in a pod (and no kubeconfig was given), else the kubeconfig kubectl would use.
 * Reads files, so it belongs to the runtime edge: entrypoints call it and hand the client to the core.
 * @throws Error when the kubeconfig or the service account is unusable.
 */
export async function connectKube(
  options: { kubeconfig: string; timeoutMs: number },
  fetcherFor: FetcherFactory,
  env: Record<string, string | undefined>,
): Promise<KubeConnection> {
  const { timeoutMs } = options;
  if (!options.kubeconfig && isInCluster(env)) {
    return { kube: await inClusterClient(fetcherFor, { timeoutMs, env }), describe: "in-cluster service account" };
  }
  const path = kubeconfigPath(undefined, { KUBECONFIG: options.kubeconfig || env.KUBECONFIG });
  const kube = await kubeconfigClient(path, fetcherFor, { timeoutMs });
  return { kube, describe: `kubeconfig ${path} (${kube.server})` };
}
