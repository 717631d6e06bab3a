/**
 * At most `--max-clients-per-gateway` clients per gateway, exactly, under any concurrency and any number of
 * replicas.
 *
 * Why slots and not a count: counting a gateway's pods (list by label) and comparing with the maximum is racy —
 * 50 concurrent requests all count the same 4 pods and all go ahead. Instead each gateway has `max` numbered
 * slots, one coordination.k8s.io Lease each (`pgw-slot-<gateway hash>-<n>`), and a pod may leave its routing
 * gate (i.e. be scheduled) only while it holds one. The API server makes every claim atomic:
 * - a free slot is claimed by *creating* its Lease: of concurrent creates of one name exactly one succeeds;
 * - a slot whose holder is no client any more (pod gone, replaced by a namesake, being deleted, failed or
 *   completed) is taken over by *updating* its Lease with the resourceVersion we read: of concurrent
 *   take-overs exactly one succeeds (409 for the others).
 * So at most `max` live pods hold a slot at any time. The Lease is owned by its pod (ownerReference), so the
 * garbage collector deletes it with the pod; a release deletes it at once. A pod that finds no slot is deleted
 * before it could ever be scheduled, and the request gets `GatewayAtCapacity`.
 */
import type { Lease } from "kubernetes-types/coordination/v1";
import type { Pod } from "kubernetes-types/core/v1";
import { KubeApiError } from "../kube/errors.ts";
import { getPod } from "../kube/pods.ts";
import { sha256Hex } from "../util/digest.ts";
import type { RestClient } from "../kube/rest-client.ts";
import { LABEL_MANAGED_BY, MANAGED_BY } from "../provision/client-pod.ts";

/** Label on a slot Lease: the gateway's name (a label value by the pending event's schema). */
export const LABEL_SLOT_GATEWAY = "podgateway.io/gateway";
/** Label on a slot Lease: the uid of the pod holding it. */
export const LABEL_SLOT_HOLDER_UID = "podgateway.io/holder-uid";

export interface CapacityOptions {
  kube: RestClient;
  namespace: string;
  /** Slots per gateway. */
  maxPerGateway: number;
}

/** The outcome of a claim: the slot held, or why none could be had. */
export type Claim = { ok: true; slot: number } | { ok: false; message: string };

const leasesPath = (namespace: string, name?: string) =>
  `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases${name ? `/${encodeURIComponent(name)}` : ""}`;

/** The Lease name of slot `n` of a gateway; gateway names may have capitals and `_`, Lease names may not. */
export function slotName(gateway: string, n: number): string {
  return `pgw-slot-${sha256Hex(gateway).slice(0, 16)}-${n}`;
}

function slotLease(namespace: string, gateway: string, n: number, pod: Pod): Lease {
  const { name, uid } = pod.metadata as { name: string; uid: string };
  return {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: {
      name: slotName(gateway, n),
      namespace,
      labels: { [LABEL_MANAGED_BY]: MANAGED_BY, [LABEL_SLOT_GATEWAY]: gateway, [LABEL_SLOT_HOLDER_UID]: uid },
      ownerReferences: [{ apiVersion: "v1", kind: "Pod", name, uid }],
    },
    spec: { holderIdentity: name, acquireTime: microTime(new Date()) },
  };
}

/**
 * Claims a slot of `gateway` for `pod` (which must exist: its uid identifies the holder). Idempotent: a pod
 * already holding a slot gets that slot back.
 * @throws on transient API trouble; the caller's sender retries, and the claim resumes where it stands.
 */
export async function claimSlot(options: CapacityOptions, gateway: string, pod: Pod, signal?: AbortSignal): Promise<Claim> {
  const { kube, namespace, maxPerGateway } = options;
  const uid = pod.metadata!.uid!;
  const held = await leasesOf(options, gateway, signal);
  const mine = held.filter((lease) => lease.metadata?.labels?.[LABEL_SLOT_HOLDER_UID] === uid);
  if (mine.length > 0) return { ok: true, slot: slotNumber(mine[0]!) };

  const byName = new Map(held.map((lease) => [lease.metadata!.name!, lease]));
  for (let n = 0; n < maxPerGateway; n++) {
    const name = slotName(gateway, n);
    let existing = byName.get(name);
    if (!existing) {
      try {
        await kube.performRequest({ method: "POST", path: leasesPath(namespace), body: slotLease(namespace, gateway, n, pod), signal });
        return await settle(options, gateway, uid, n, signal);
      } catch (error) {
        if (!(error instanceof KubeApiError && error.code === 409)) throw error;
      }
      existing = await getLease(kube, namespace, name, signal);
      if (!existing) continue; // claimed and freed again in between: someone else's turn, move on.
    }
    if (existing.metadata?.labels?.[LABEL_SLOT_HOLDER_UID] === uid) return { ok: true, slot: n };
    if (!(await holderIsGone(kube, namespace, existing, signal))) continue;
    const fresh = slotLease(namespace, gateway, n, pod);
    const takeover: Lease = { ...fresh, metadata: { ...fresh.metadata, resourceVersion: existing.metadata?.resourceVersion } };
    try {
      await kube.performRequest({ method: "PUT", path: leasesPath(namespace, name), body: takeover, signal });
      return await settle(options, gateway, uid, n, signal);
    } catch (error) {
      // 409: another claimant took it over first. 404: its holder's deletion collected it; not worth a second try.
      if (!(error instanceof KubeApiError && (error.code === 409 || error.code === 404))) throw error;
    }
  }
  return { ok: false, message: `gateway ${gateway} has its maximum of ${maxPerGateway} clients; release one first` };
}

/** Frees every slot held by the pod with `uid` (a release). Already free is fine. */
export async function releaseSlots(options: CapacityOptions, uid: string, signal?: AbortSignal): Promise<void> {
  const { kube, namespace } = options;
  const list = await kube.performRequest<{ items: Lease[] }>({
    method: "GET",
    path: leasesPath(namespace),
    query: { labelSelector: `${LABEL_MANAGED_BY}=${MANAGED_BY},${LABEL_SLOT_HOLDER_UID}=${uid}` },
    signal,
  });
  for (const lease of list.items) await deleteLease(kube, namespace, lease, signal);
}

/**
 * Two deliveries of one request at once may each have claimed a slot for the same pod. Both look: a pod
 * keeps only its lowest-numbered slot and frees the others, so nobody ever frees the slot it ends up with.
 */
async function settle(options: CapacityOptions, gateway: string, uid: string, claimed: number, signal?: AbortSignal): Promise<Claim> {
  const mine = (await leasesOf(options, gateway, signal))
    .filter((lease) => lease.metadata?.labels?.[LABEL_SLOT_HOLDER_UID] === uid)
    .sort((a, b) => slotNumber(a) - slotNumber(b));
  const keep = mine.length > 0 ? slotNumber(mine[0]!) : claimed;
  for (const lease of mine.slice(1)) await deleteLease(options.kube, options.namespace, lease, signal);
  return { ok: true, slot: Math.min(keep, claimed) };
}

async function leasesOf(options: CapacityOptions, gateway: string, signal?: AbortSignal): Promise<Lease[]> {
  const list = await options.kube.performRequest<{ items: Lease[] }>({
    method: "GET",
    path: leasesPath(options.namespace),
    query: { labelSelector: `${LABEL_MANAGED_BY}=${MANAGED_BY},${LABEL_SLOT_GATEWAY}=${gateway}` },
    signal,
  });
  return list.items.filter((lease) => lease.metadata?.name?.startsWith(slotName(gateway, 0).slice(0, -1)));
}

/** Whether a slot's holder is no longer a client: then its slot may be taken over. */
async function holderIsGone(kube: RestClient, namespace: string, lease: Lease, signal?: AbortSignal): Promise<boolean> {
  const name = lease.spec?.holderIdentity;
  const uid = lease.metadata?.labels?.[LABEL_SLOT_HOLDER_UID];
  if (!name || !uid) return true;
  let pod: Pod;
  try {
    pod = await getPod(kube, namespace, name, signal);
  } catch (error) {
    if (error instanceof KubeApiError && error.code === 404) return true;
    throw error;
  }
  return pod.metadata?.uid !== uid || Boolean(pod.metadata?.deletionTimestamp) ||
    pod.status?.phase === "Failed" || pod.status?.phase === "Succeeded";
}

async function getLease(kube: RestClient, namespace: string, name: string, signal?: AbortSignal): Promise<Lease | undefined> {
  try {
    return await kube.performRequest<Lease>({ method: "GET", path: leasesPath(namespace, name), signal });
  } catch (error) {
    if (error instanceof KubeApiError && error.code === 404) return undefined;
    throw error;
  }
}

/** Deletes exactly the Lease we read (resourceVersion precondition): a slot re-claimed since stays claimed. */
async function deleteLease(kube: RestClient, namespace: string, lease: Lease, signal?: AbortSignal): Promise<void> {
  try {
    await kube.performRequest({
      method: "DELETE",
      path: leasesPath(namespace, lease.metadata!.name!),
      body: { kind: "DeleteOptions", apiVersion: "v1", preconditions: { uid: lease.metadata?.uid, resourceVersion: lease.metadata?.resourceVersion } },
      signal,
    });
  } catch (error) {
    if (!(error instanceof KubeApiError && (error.code === 404 || error.code === 409))) throw error;
  }
}

function slotNumber(lease: Lease): number {
  return Number(lease.metadata?.name?.split("-").pop());
}

/** A Kubernetes MicroTime: RFC 3339 with microseconds. */
function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}
