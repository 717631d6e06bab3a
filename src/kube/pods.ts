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

/** Pods of a namespace, optionally narrowed by a label selector. */
export function listPods(client: RestClient, namespace: string, labelSelector?: string, signal?: AbortSignal): Promise<PodList> {
  return client.performRequest<PodList>({ method: "GET", path: podsPath(namespace), query: { labelSelector }, signal });
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
