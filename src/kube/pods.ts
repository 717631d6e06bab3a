import type { Pod, PodList } from "kubernetes-types/core/v1";
import type { RestClient } from "./rest-client.ts";

/** A JSON Patch (RFC 6902) operation, as the API server accepts with `application/json-patch+json`. */
export type JsonPatchOp =
  | { op: "test" | "add" | "replace"; path: string; value: unknown }
  | { op: "remove"; path: string };

/** The pods collection of a namespace, or one pod in it. */
export const podsPath = (namespace: string, name?: string) =>
  `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods${name ? `/${encodeURIComponent(name)}` : ""}`;

/** Creates a pod and returns it as stored, i.e. after every mutating admission webhook ran. */
export function createPod(client: RestClient, namespace: string, pod: Pod, signal?: AbortSignal): Promise<Pod> {
  return client.performRequest<Pod>({ method: "POST", path: podsPath(namespace), body: pod, signal });
}

/**
 * Asks the API server to create `pod` without storing it (`dryRun=All`, strict field validation; admission
 * webhooks run as well): the pod it would store, or its refusal.
 */
export function dryRunCreatePod(client: RestClient, namespace: string, pod: Pod, signal?: AbortSignal): Promise<Pod> {
  return client.performRequest<Pod>({ method: "POST", path: podsPath(namespace), query: { dryRun: "All", fieldValidation: "Strict" }, body: pod, signal });
}

/** How {@link listPods} reads. */
export interface ListOptions<T = Pod> {
  labelSelector?: string;
  signal?: AbortSignal;
  /** What to keep of each pod, applied page by page: a caller that needs little never holds every whole pod at once. */
  keep?: (pod: Pod) => T;
}

/** A list of pods, or of what a caller keeps of each ({@link ListOptions.keep}). */
export type PodListOf<T> = Omit<PodList, "items"> & { items: T[] };

/** Pods per page: client-go's pager reads 500 at a time too. */
export const PAGE = 500;

/**
 * One page of a pod list: at most `limit` pods, and `metadata.continue` when more follow (pass it back as
 * `continueToken`; the server answers 410 once it expired).
 */
export function listPodsPage(
  client: RestClient,
  namespace: string,
  options: { labelSelector?: string; limit: number; continueToken?: string; signal?: AbortSignal },
): Promise<PodList> {
  const query = { labelSelector: options.labelSelector, limit: String(options.limit), continue: options.continueToken };
  return client.performRequest<PodList>({ method: "GET", path: podsPath(namespace), query, signal: options.signal });
}

/**
 * Pods of a namespace, optionally narrowed by a label selector, read in pages (one consistent snapshot: the
 * server's continue token), so 20,000 pods never arrive as one response of hundreds of megabytes.
 * The list's resourceVersion is the snapshot's, to watch from.
 */
export async function listPods<T = Pod>(client: RestClient, namespace: string, options: ListOptions<T> = {}): Promise<PodListOf<T>> {
  const { labelSelector, signal, keep } = options;
  const items: T[] = [];
  let page: PodList;
  let token: string | undefined;
  do {
    page = await listPodsPage(client, namespace, { labelSelector, limit: PAGE, continueToken: token, signal });
    for (const pod of page.items) items.push(keep ? keep(pod) : pod as T);
    token = page.metadata?.continue || undefined;
  } while (token);
  return { ...page, items };
}

export function getPod(client: RestClient, namespace: string, name: string, signal?: AbortSignal): Promise<Pod> {
  return client.performRequest<Pod>({ method: "GET", path: podsPath(namespace, name), signal });
}

export function patchPod(client: RestClient, namespace: string, name: string, patch: JsonPatchOp[], signal?: AbortSignal): Promise<Pod> {
  return client.performRequest<Pod>({
    method: "PATCH",
    path: podsPath(namespace, name),
    body: patch,
    contentType: "application/json-patch+json",
    signal,
  });
}

/** A strategic merge patch (lists such as `metadata.finalizers` are merged, not replaced). */
export function strategicPatchPod(client: RestClient, namespace: string, name: string, patch: unknown, signal?: AbortSignal): Promise<Pod> {
  return client.performRequest<Pod>({
    method: "PATCH",
    path: podsPath(namespace, name),
    body: patch,
    contentType: "application/strategic-merge-patch+json",
    signal,
  });
}

/** How {@link deletePod} deletes. */
export interface DeleteOptions {
  /**
   * `gracePeriodSeconds: 0`: gone at once, no SIGTERM. Only for a pod that never ran (still behind a scheduling
   * gate, never placed on a node): there is nothing to stop. Otherwise the pod's own
   * `terminationGracePeriodSeconds` applies: its containers get SIGTERM and that long to finish.
   */
  force?: boolean;
  signal?: AbortSignal;
}

/** Deletes a pod only if it is still the one identified by `uid`, so a re-created namesake is never hit. */
export function deletePod(client: RestClient, namespace: string, name: string, uid: string | undefined, options: DeleteOptions = {}): Promise<unknown> {
  return client.performRequest({
    method: "DELETE",
    path: podsPath(namespace, name),
    body: { kind: "DeleteOptions", apiVersion: "v1", ...(options.force ? { gracePeriodSeconds: 0 } : {}), ...(uid ? { preconditions: { uid } } : {}) },
    signal: options.signal,
  });
}
