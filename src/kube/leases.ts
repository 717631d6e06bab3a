/**
 * coordination.k8s.io/v1 Leases: the leader election's (src/controller/leader.ts) and the per-gateway capacity
 * slots' (src/lifecycle/capacity.ts). Plain calls; what a 404 or 409 means is the caller's to decide.
 */
import type { Lease, LeaseList } from "kubernetes-types/coordination/v1";
import type { RestClient } from "./rest-client.ts";

/** The Leases of a namespace, or one Lease in it. */
export const leasesPath = (namespace: string, name?: string) =>
  `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases${name ? `/${encodeURIComponent(name)}` : ""}`;

/** A Kubernetes MicroTime (`acquireTime`, `renewTime`): RFC 3339 with microseconds. */
export const microTime = (ms: number) => new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");

export function getLease(kube: RestClient, namespace: string, name: string, signal?: AbortSignal): Promise<Lease> {
  return kube.performRequest<Lease>({ method: "GET", path: leasesPath(namespace, name), signal });
}

/** The Leases of a namespace matching a label selector (few: no paging). */
export async function listLeases(kube: RestClient, namespace: string, labelSelector: string, signal?: AbortSignal): Promise<Lease[]> {
  return (await kube.performRequest<LeaseList>({ method: "GET", path: leasesPath(namespace), query: { labelSelector }, signal })).items;
}

/** Creates a Lease; of concurrent creates of one name exactly one succeeds (the others: 409). */
export function createLease(kube: RestClient, namespace: string, lease: Lease, signal?: AbortSignal): Promise<Lease> {
  return kube.performRequest<Lease>({ method: "POST", path: leasesPath(namespace), body: lease, signal });
}

/** Replaces a Lease; `lease.metadata.resourceVersion` makes it conditional (409 when someone wrote since). */
export function updateLease(kube: RestClient, namespace: string, lease: Lease, signal?: AbortSignal): Promise<Lease> {
  return kube.performRequest<Lease>({ method: "PUT", path: leasesPath(namespace, lease.metadata!.name!), body: lease, signal });
}

/** Deletes exactly the Lease that was read (uid and resourceVersion preconditions: 409 when it changed). */
export function deleteLease(kube: RestClient, namespace: string, lease: Lease, signal?: AbortSignal): Promise<unknown> {
  return kube.performRequest({
    method: "DELETE",
    path: leasesPath(namespace, lease.metadata!.name!),
    body: { kind: "DeleteOptions", apiVersion: "v1", preconditions: { uid: lease.metadata?.uid, resourceVersion: lease.metadata?.resourceVersion } },
    signal,
  });
}
