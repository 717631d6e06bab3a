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

/** How {@link listPods} reads. */
export interface ListOptions {
  labelSelector?: string;
  signal?: AbortSignal;
  /** What to keep of each pod, applied page by page: a caller that needs little never holds every whole pod at once. */
  keep?: (pod: Pod) => Pod;
}

/** Pods per page: client-go's pager reads 500 at a time too. */
const PAGE = 500;

/**
 * Pods of a namespace, optionally narrowed by a label selector, read in pages (one consistent snapshot: the
 * server's continue token), so 20,000 pods never arrive as one response of hundreds of megabytes.
 * The list's resourceVersion is the snapshot's, to watch from.
 */
export async function listPods(client: RestClient, namespace: string, options: ListOptions = {}): Promise<PodList> {
  const { labelSelector, signal, keep } = options;
  const items: Pod[] = [];
  let page: PodList;
  let token: string | undefined;
  do {
    const query = { labelSelector, limit: String(PAGE), continue: token };
    page = await client.performRequest<PodList>({ method: "GET", path: podsPath(namespace), query, signal });
    for (const pod of page.items) items.push(keep ? keep(pod) : pod);
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

/** Deletes a pod only if it is still the one identified by `uid`, so a re-created namesake is never hit. */
export function deletePod(client: RestClient, namespace: string, name: string, uid: string | undefined, signal?: AbortSignal): Promise<unknown> {
  return client.performRequest({
    method: "DELETE",
    path: podsPath(namespace, name),
    body: { kind: "DeleteOptions", apiVersion: "v1", gracePeriodSeconds: 0, ...(uid ? { preconditions: { uid } } : {}) },
    signal,
  });
}
