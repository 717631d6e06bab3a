/**
 * What makes a client pod a warm pool member: the pool's labels on a pod made exactly like a client (the operator's
 * template, the routing gate, the webhook's check), for no request yet. Shared by the keeper (controller), which
 * makes members, and the claim (service), which hands them out.
 */
import type { Pod } from "kubernetes-types/core/v1";
import type { ObjectMeta } from "kubernetes-types/meta/v1";
import { isAdmitted, isReady, type StateRules } from "../lifecycle/client-state.ts";
import { type ClientPodSettings, type ClientRequest, DEFAULT_TEMPLATE, LABEL_MANAGED_BY, MANAGED_BY } from "../provision/client-pod.ts";
import { isRouted } from "../provision/provisioner.ts";
import { digest } from "../util/digest.ts";

/** Label of an unclaimed member, value {@link POOL_MEMBER}; a claim removes it, and the pod is a client from then on. */
export const LABEL_POOL = "podgateway.io/pool";
export const POOL_MEMBER = "member";
/** Label of a member: the hash of what it was made from ({@link templateHash}); a member of another hash is never handed out. */
export const LABEL_POOL_TEMPLATE = "podgateway.io/pool-template";
/** The request source members are made for: no sender ever has it (a request's source is its own). */
export const POOL_SOURCE = "/podgateway/pool";

/** Client pods, not unclaimed members: the lifecycle tracker and `/clients` see a member only once it is claimed. */
export const CLIENTS_NOT_POOL = `${LABEL_MANAGED_BY}=${MANAGED_BY},!${LABEL_POOL}`;
/** Unclaimed members of every gateway and hash. */
export const POOL_MEMBERS = `${LABEL_MANAGED_BY}=${MANAGED_BY},${LABEL_POOL}=${POOL_MEMBER}`;

/**
 * The hash of everything a member is made from: the service and the controller compute it from the same options
 * and template, so they agree on which members are current; a changed template is a new hash (the pool rolls).
 */
export function templateHash(settings: ClientPodSettings): string {
  const { template = DEFAULT_TEMPLATE, image, command, activeDeadlineSeconds, gatewayLabelKey, gatewayAnnotationKey, namespace } = settings;
  return digest(JSON.stringify({ template, image, command, activeDeadlineSeconds, gatewayLabelKey, gatewayAnnotationKey, namespace })).slice(0, 16);
}

/** The settings members are made with: the operator's, with the pool's two labels added to the template's. */
export function memberSettings(settings: ClientPodSettings, hash: string): ClientPodSettings {
  const { metadata, spec } = settings.template ?? DEFAULT_TEMPLATE;
  const labels = { ...metadata.labels, [LABEL_POOL]: POOL_MEMBER, [LABEL_POOL_TEMPLATE]: hash };
  return { ...settings, template: { metadata: { ...metadata, labels } as ObjectMeta, spec } };
}

/** A request for a new member: its own id, so its pod name is new (and, like every client's, derived from it). */
export function memberRequest(gatewayName: string): ClientRequest {
  return { source: POOL_SOURCE, id: crypto.randomUUID(), gatewayName };
}

/** Whether `pod` is an unclaimed member of the current hash. */
export function isMember(pod: Pick<Pod, "metadata">, hash: string): boolean {
  const labels = pod.metadata?.labels ?? {};
  return labels[LABEL_POOL] === POOL_MEMBER && labels[LABEL_POOL_TEMPLATE] === hash;
}

/**
 * Whether a member may be handed out: current, routed (the webhook's init container), past the routing gate,
 * Running and Ready with its gateway sidecar running, and not being deleted. Fail-closed: anything else waits.
 */
export function isClaimable(pod: Pod, hash: string, rules: Pick<StateRules, "sidecarContainer"> & { routingInitContainer: string }): boolean {
  return isMember(pod, hash) && !pod.metadata?.deletionTimestamp && isRouted(pod, rules.routingInitContainer) && isAdmitted(pod) &&
    isReady(pod, rules);
}
