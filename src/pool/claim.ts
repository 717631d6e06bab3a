/**
 * The claim record: which pod serves a request of a pooled gateway, exactly once across redeliveries and replicas.
 *
 * A cold client's pod name is derived from its request, so the name alone makes its create exactly-once. A warm
 * member was made before its request, so its name cannot say whose it is; the claim is a record of its own: a
 * coordination.k8s.io Lease named after the request (`pgw-claim-<hash of source and id>`), naming the pod that
 * serves it and owned by that pod (the garbage collector deletes it with the pod). Of concurrent creates of one
 * name exactly one succeeds, so every delivery of a request, in any replica, agrees on one pod. Then the member
 * is taken out of the pool by a JSON patch whose `test` op checks its pool label: of two requests that picked the
 * same member exactly one patch succeeds, the other picks again. The README ("Warm pool") has the failure cases.
 */
import type { Lease } from "kubernetes-types/coordination/v1";
import type { Pod } from "kubernetes-types/core/v1";
import { traceAnnotations } from "../events/trace.ts";
import { isStatus } from "../kube/errors.ts";
import { createLease, getLease, microTime, updateLease } from "../kube/leases.ts";
import { getPod, type JsonPatchOp, patchPod } from "../kube/pods.ts";
import type { RestClient } from "../kube/rest-client.ts";
import {
  ANNOTATION_REQUEST_ID,
  ANNOTATION_REQUEST_SOURCE,
  type ClientRequest,
  LABEL_MANAGED_BY,
  MANAGED_BY,
} from "../provision/client-pod.ts";
import { AGAIN, retryOnConflict } from "../retry.ts";
import { digest } from "../util/digest.ts";
import { LABEL_POOL, POOL_MEMBER } from "./member.ts";

/** Label on a claim Lease: the gateway of its request. */
export const LABEL_CLAIM_GATEWAY = "podgateway.io/gateway";

export interface ClaimOptions {
  kube: RestClient;
  namespace: string;
  /** Whether a member named by an earlier record may still be handed out (current, routed, Ready). */
  claimable: (pod: Pod) => boolean;
}

/** The pod that serves a request, and when that was first recorded (the done event's time on every delivery). */
export interface Recorded {
  pod: Pod;
  at?: string;
}

/** The claim record's name for a request. */
export function claimName(request: Pick<ClientRequest, "source" | "id">): string {
  return `pgw-claim-${digest(request.source, request.id).slice(0, 20)}`;
}

function claimLease(namespace: string, request: ClientRequest, pod: Pod, resourceVersion?: string): Lease {
  const { name, uid } = pod.metadata as { name: string; uid: string };
  return {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: {
      name: claimName(request),
      namespace,
      ...(resourceVersion ? { resourceVersion } : {}),
      labels: { [LABEL_MANAGED_BY]: MANAGED_BY, [LABEL_CLAIM_GATEWAY]: request.gatewayName },
      annotations: { [ANNOTATION_REQUEST_SOURCE]: request.source, [ANNOTATION_REQUEST_ID]: request.id },
      ownerReferences: [{ apiVersion: "v1", kind: "Pod", name, uid }],
    },
    spec: { holderIdentity: name, acquireTime: microTime(Date.now()) },
  };
}

/** Whether `pod` was made for, or claimed by, `request`. */
export function servesRequest(pod: Pod, request: Pick<ClientRequest, "source" | "id">): boolean {
  const annotations = pod.metadata?.annotations ?? {};
  return annotations[ANNOTATION_REQUEST_SOURCE] === request.source && annotations[ANNOTATION_REQUEST_ID] === request.id;
}

/**
 * Records that `pod` serves `request`, unless a live record names another pod: then that pod serves it. A record
 * is live while its pod exists (the same uid), is not being deleted, and serves the request or is still a
 * claimable member (a delivery that recorded it and died before its patch). Otherwise it is stale — its pod is
 * gone, or went to another request first — and is replaced (resourceVersion precondition: one replacer wins).
 * @throws on transient API trouble, or when every round lost a race.
 */
export async function recordClaim(options: ClaimOptions, request: ClientRequest, pod: Pod, signal?: AbortSignal): Promise<Recorded> {
  const { kube, namespace } = options;
  const name = claimName(request);
  return await retryOnConflict(4, async () => {
    try {
      const created = await createLease(kube, namespace, claimLease(namespace, request, pod), signal);
      return { pod, at: created.metadata?.creationTimestamp };
    } catch (error) {
      if (!isStatus(error, 409)) throw error;
    }
    let lease: Lease;
    try {
      lease = await getLease(kube, namespace, name, signal);
    } catch (error) {
      if (isStatus(error, 404)) return AGAIN; // collected with its pod just now: create again
      throw error;
    }
    const at = lease.metadata?.creationTimestamp;
    const owner = lease.metadata?.ownerReferences?.find((reference) => reference.kind === "Pod");
    if (owner?.uid === pod.metadata?.uid) return { pod, at };
    const holder = owner ? await getPodOrUndefined(kube, namespace, owner.name, signal) : undefined;
    if (holder && holder.metadata?.uid === owner?.uid && !holder.metadata?.deletionTimestamp && (servesRequest(holder, request) || options.claimable(holder))) {
      return { pod: holder, at };
    }
    try {
      const replaced = await updateLease(kube, namespace, claimLease(namespace, request, pod, lease.metadata?.resourceVersion), signal);
      return { pod, at: replaced.metadata?.creationTimestamp };
    } catch (error) {
      if (isStatus(error, 409, 404)) return AGAIN;
      throw error;
    }
  }, `claim ${namespace}/${name} keeps changing; retry later`);
}

/**
 * Takes the recorded member out of the pool for `request`: one JSON patch, whose `test` op on the pool label
 * makes it exact (422 when another claim took the member first), removing that label and writing the request's
 * annotations (source, id, trace context) over the member's own. Done already (a concurrent delivery): the pod.
 * @returns the claimed pod, or undefined when the member went to another request.
 */
export async function takeMember(options: ClaimOptions, request: ClientRequest, pod: Pod, signal?: AbortSignal): Promise<Pod | undefined> {
  const { kube, namespace } = options;
  const name = pod.metadata!.name!;
  if (servesRequest(pod, request) && pod.metadata?.labels?.[LABEL_POOL] === undefined) return pod;
  const annotations = { [ANNOTATION_REQUEST_SOURCE]: request.source, [ANNOTATION_REQUEST_ID]: request.id, ...traceAnnotations(request.trace) };
  const patch: JsonPatchOp[] = [
    { op: "test", path: `/metadata/labels/${pointer(LABEL_POOL)}`, value: POOL_MEMBER },
    { op: "test", path: "/metadata/uid", value: pod.metadata?.uid },
    { op: "remove", path: `/metadata/labels/${pointer(LABEL_POOL)}` },
    // `add` of an object member replaces it when present: the member's own request annotations are overwritten.
    ...Object.entries(annotations).map(([key, value]): JsonPatchOp => ({ op: "add", path: `/metadata/annotations/${pointer(key)}`, value })),
  ];
  try {
    return await patchPod(kube, namespace, name, patch, signal);
  } catch (error) {
    if (!isStatus(error, 422, 409, 404)) throw error;
  }
  // Lost the test: a concurrent delivery of this same request may have won it (ours), or another request did.
  const now = await getPodOrUndefined(kube, namespace, name, signal);
  return now && now.metadata?.uid === pod.metadata?.uid && servesRequest(now, request) ? now : undefined;
}

async function getPodOrUndefined(kube: RestClient, namespace: string, name: string, signal?: AbortSignal): Promise<Pod | undefined> {
  try {
    return await getPod(kube, namespace, name, signal);
  } catch (error) {
    if (isStatus(error, 404)) return undefined;
    throw error;
  }
}

/** A JSON Pointer token (RFC 6901): `~` and `/` escaped. */
function pointer(key: string): string {
  return key.replaceAll("~", "~0").replaceAll("/", "~1");
}
