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
 * A claim costs O(1) API calls whatever the limit: it lists the gateway's slots (by label) rather than reading
 * them one by one.
 * So at most `max` live pods hold a slot at any time. The Lease is owned by its pod (ownerReference), so the
 * garbage collector deletes it with the pod; a release deletes it at once. A pod that finds no slot is deleted
 * before it could ever be scheduled, and the request gets `GatewayAtCapacity`.
 */
import type { Lease } from "kubernetes-types/coordination/v1";
import type { Pod } from "kubernetes-types/core/v1";
import { isStatus } from "../kube/errors.ts";
import { AGAIN, retryOnConflict } from "../retry.ts";
import { createLease, deleteLease as deleteLeaseCall, listLeases, microTime, updateLease } from "../kube/leases.ts";
import { listPods } from "../kube/pods.ts";
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
  /** The label key client pods carry with their gateway's name: narrows the LIST of live holders. */
  gatewayLabelKey?: string;
}

/** The outcome of a claim: the slot held, or why none could be had. */
export type Claim = { ok: true; slot: number } | { ok: false; message: string };

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
    spec: { holderIdentity: name, acquireTime: microTime(Date.now()) },
  };
}

/** Rounds of "list, then claim a free or stale slot" before giving up with a transient error (heavy contention). */
const CLAIM_ROUNDS = 8;

/**
 * Claims a slot of `gateway` for `pod` (which must exist: its uid identifies the holder). Idempotent: a pod
 * already holding a slot gets that slot back. O(1) API calls whatever the limit: one LIST of the gateway's
 * slots, one create of a free one (picked at random, so concurrent claimants rarely collide) or — when none is
 * free — one LIST of the pods to find holders that are gone and one take-over; a lost race starts a new round.
 * @throws on transient API trouble, or when every round lost its race; the caller's sender retries.
 */
export async function claimSlot(options: CapacityOptions, gateway: string, pod: Pod, signal?: AbortSignal): Promise<Claim> {
  const { kube, namespace, maxPerGateway } = options;
  const uid = pod.metadata!.uid!;
  return await retryOnConflict(CLAIM_ROUNDS, async () => {
    const held = await leasesOf(options, gateway, signal);
    const mine = held.filter((lease) => lease.metadata?.labels?.[LABEL_SLOT_HOLDER_UID] === uid);
    if (mine.length > 0) return { ok: true, slot: Math.min(...mine.map(slotNumber)) };

    const taken = new Set(held.map(slotNumber));
    const free: number[] = [];
    for (let n = 0; n < maxPerGateway && free.length < maxPerGateway - taken.size; n++) if (!taken.has(n)) free.push(n);
    if (free.length > 0) {
      const n = free[Math.floor(Math.random() * free.length)]!;
      try {
        await createLease(kube, namespace, slotLease(namespace, gateway, n, pod), signal);
        return await settle(options, gateway, uid, n, signal);
      } catch (error) {
        if (!isStatus(error, 409)) throw error;
        return AGAIN; // someone else created it first: look again.
      }
    }

    const inRange = held.filter((lease) => slotNumber(lease) < maxPerGateway);
    const live = await liveHolders(options, gateway, signal);
    const gone = inRange.filter((lease) => !live.has(lease.metadata?.labels?.[LABEL_SLOT_HOLDER_UID] ?? ""));
    if (gone.length === 0) return { ok: false, message: `gateway ${gateway} has its maximum of ${maxPerGateway} clients; release one first` };
    const existing = gone[Math.floor(Math.random() * gone.length)]!;
    const fresh = slotLease(namespace, gateway, slotNumber(existing), pod);
    const takeover: Lease = { ...fresh, metadata: { ...fresh.metadata, resourceVersion: existing.metadata?.resourceVersion } };
    try {
      await updateLease(kube, namespace, takeover, signal);
      return await settle(options, gateway, uid, slotNumber(existing), signal);
    } catch (error) {
      // 409: another claimant took it over first. 404: its holder's deletion collected it. Look again.
      if (!isStatus(error, 409, 404)) throw error;
      return AGAIN;
    }
  }, `gateway ${gateway}: too many concurrent claims for its slots; retry later`);
}

/**
 * The uids of the pods that may hold a slot: existing, not being deleted, not ended. One LIST (of the
 * gateway's client pods when its label key is known, else of every client pod).
 */
async function liveHolders(options: CapacityOptions, gateway: string, signal?: AbortSignal): Promise<Set<string>> {
  const selector = [`${LABEL_MANAGED_BY}=${MANAGED_BY}`, ...(options.gatewayLabelKey ? [`${options.gatewayLabelKey}=${gateway}`] : [])].join(",");
  const pods = await listPods(options.kube, options.namespace, { labelSelector: selector, signal });
  return new Set(pods.items
    .filter((pod) => !pod.metadata?.deletionTimestamp && pod.status?.phase !== "Failed" && pod.status?.phase !== "Succeeded")
    .map((pod) => pod.metadata?.uid ?? ""));
}

/** Frees every slot held by the pod with `uid` (a release). Already free is fine. */
export async function releaseSlots(options: CapacityOptions, uid: string, signal?: AbortSignal): Promise<void> {
  const { kube, namespace } = options;
  const held = await listLeases(kube, namespace, `${LABEL_MANAGED_BY}=${MANAGED_BY},${LABEL_SLOT_HOLDER_UID}=${uid}`, signal);
  for (const lease of held) await deleteLease(kube, namespace, lease, signal);
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
  const leases = await listLeases(options.kube, options.namespace, `${LABEL_MANAGED_BY}=${MANAGED_BY},${LABEL_SLOT_GATEWAY}=${gateway}`, signal);
  return leases.filter((lease) => lease.metadata?.name?.startsWith(slotName(gateway, 0).slice(0, -1)));
}

/** Deletes exactly the Lease we read (resourceVersion precondition): a slot re-claimed since stays claimed. */
async function deleteLease(kube: RestClient, namespace: string, lease: Lease, signal?: AbortSignal): Promise<void> {
  try {
    await deleteLeaseCall(kube, namespace, lease, signal);
  } catch (error) {
    if (!isStatus(error, 404, 409)) throw error;
  }
}

function slotNumber(lease: Lease): number {
  return Number(lease.metadata?.name?.split("-").pop());
}
