import type { Pod } from "kubernetes-types/core/v1";
import { isStatus, isTransient, KubeApiError, KubeTransportError } from "../kube/errors.ts";
import { createPod, deletePod, getPod, patchPod } from "../kube/pods.ts";
import type { RestClient } from "../kube/rest-client.ts";
import type { FailureReason } from "../events/schema.ts";
import { AGAIN, retryOnConflict } from "../retry.ts";
import {
  ANNOTATION_REQUEST_ID,
  ANNOTATION_REQUEST_SOURCE,
  type ClientPodSettings,
  type ClientRequest,
  clientPod,
  clientPodName,
  gatewayOf,
  ROUTING_GATE,
} from "./client-pod.ts";

/** Everything the provisioner needs; built once at start-up. */
export interface ProvisionerOptions {
  kube: RestClient;
  pod: ClientPodSettings;
  /** Name of the init container the pod-gateway webhook adds to every pod it routes. */
  routingInitContainer: string;
  /** `--gateways`: the only gateway names events may choose; absent or empty: any (each still verified). */
  gateways?: readonly string[];
  /**
   * Asked about a routed pod still behind the routing gate, just before the gate is removed (e.g. the
   * per-gateway capacity, see src/lifecycle/capacity.ts): a refusal deletes the never-schedulable pod and
   * fails the request with its reason. A pod already past the gate was admitted earlier and is not asked again.
   */
  admit?: (pod: Pod, request: ClientRequest, signal?: AbortSignal) => Promise<{ reason: FailureReason; message: string } | undefined>;
}

/** The end of one provisioning: a routed, schedulable pod, or a permanent failure. Transient trouble throws. */
export type Provisioned =
  | { ok: true; pod: Pod; name: string; namespace: string }
  | { ok: false; reason: FailureReason; message: string; name: string; namespace: string };

/**
 * Makes sure the routed client pod for `request` exists and may be scheduled. Safe to run any number of
 * times, concurrently, in any replica: every step is keyed on the pod name derived from the request.
 *
 * 1. Create the pod with a scheduling gate, or meet the one an earlier delivery created.
 * 2. Read the pod as the API server stored it, after admission: no `gateway-init` means no webhook routed it;
 *    delete it and fail. Fail-closed: until step 3, the scheduler cannot place the pod, whatever happens to us.
 * 3. Remove the scheduling gate.
 *
 * @throws KubeTransportError or a transient KubeApiError (429, 5xx): the sender should retry.
 */
export async function provisionClient(options: ProvisionerOptions, request: ClientRequest, signal?: AbortSignal): Promise<Provisioned> {
  const { kube } = options;
  const namespace = options.pod.namespace;
  if (options.gateways?.length && !options.gateways.includes(request.gatewayName)) {
    // Decided before any API call: an unknown gateway costs no pod create and delete.
    const message = `gateway ${request.gatewayName} is not one of the gateways served here (--gateways ${options.gateways.join(",")})`;
    return { ok: false, reason: "UnknownGateway", message, name: clientPodName(request), namespace };
  }
  const desired = clientPod(options.pod, request);
  const name = desired.metadata!.name!;
  const failed = (reason: FailureReason, message: string): Provisioned => ({ ok: false, reason, message, name, namespace });

  let pod: Pod;
  try {
    pod = await createOrMeet(kube, desired, signal);
  } catch (error) {
    if (error instanceof KubeApiError && !isTransient(error)) {
      return failed("PodRejected", `the API server refused pod ${namespace}/${name}: ${error.message}`);
    }
    throw error;
  }

  const annotations = pod.metadata?.annotations ?? {};
  if (annotations[ANNOTATION_REQUEST_SOURCE] !== request.source || annotations[ANNOTATION_REQUEST_ID] !== request.id) {
    return failed("NameConflict", `pod ${namespace}/${name} exists but was created for another request`);
  }
  const recordedGateway = gatewayOf(pod, options.pod);
  if (recordedGateway !== request.gatewayName) {
    // The same event id sent again with another gateway: the pod answers for the first one only.
    return failed("NameConflict", `pod ${namespace}/${name} was created for this event with gateway ${recordedGateway}, not ${request.gatewayName}`);
  }

  if (!isRouted(pod, options.routingInitContainer)) {
    await deleteIgnoringGone(kube, namespace, name, pod.metadata?.uid, signal);
    return failed(
      "GatewayNotRouted",
      `no pod-gateway routed ${gatewaySelector(options.pod, request.gatewayName)}: the pod came back from admission without the ` +
        `"${options.routingInitContainer}" init container, so it was deleted before it could be scheduled`,
    );
  }
  if (pod.metadata?.deletionTimestamp) {
    throw new KubeTransportError(`pod ${namespace}/${name} is being deleted; retry once it is gone`);
  }

  const uid = pod.metadata?.uid;
  let step = "admitting it";
  try {
    if (options.admit && pod.spec?.schedulingGates?.some((gate) => gate.name === ROUTING_GATE)) {
      const refusal = await options.admit(pod, request, signal);
      if (refusal) {
        await deleteIgnoringGone(kube, namespace, name, uid, signal);
        return failed(refusal.reason, refusal.message);
      }
    }
    step = "lifting its routing gate";
    pod = await releaseRoutingGate(kube, pod, signal);
  } catch (error) {
    if (!(error instanceof KubeApiError) || isTransient(error)) throw error;
    // Refused for good (403, 404, 422, ...): a redelivery would meet the same refusal, and the gated pod
    // would wait forever. Remove exactly the pod we judged and say why, instead of answering 500.
    const cleanup = await deleteIgnoringGone(kube, namespace, name, uid, signal).then(
      () => "it was deleted before it could be scheduled",
      (deleteError) => {
        if (isTransient(deleteError)) throw deleteError;
        return `deleting it failed too (${(deleteError as Error).message}); the controller sweeps it once --gated-pod-timeout-seconds pass`;
      },
    );
    return failed("AdmissionFailed", `the API server refused ${step} for pod ${namespace}/${name} (HTTP ${error.code}): ${error.message}; ${cleanup}`);
  }
  return { ok: true, pod, name, namespace };
}

/** Whether the pod-gateway webhook mutated this pod: it adds its init container to every pod it routes. */
export function isRouted(pod: Pod, routingInitContainer: string): boolean {
  return pod.spec?.initContainers?.some((container) => container.name === routingInitContainer) ?? false;
}

function gatewaySelector(settings: ClientPodSettings, gateway: string): string {
  const key = settings.gatewayLabelKey || settings.gatewayAnnotationKey;
  return `${key}=${gateway}`;
}

/** 409 means another delivery of the same event won the race: its pod is ours too. */
async function createOrMeet(kube: RestClient, desired: Pod, signal?: AbortSignal): Promise<Pod> {
  const { name, namespace } = desired.metadata as { name: string; namespace: string };
  return await retryOnConflict(3, async () => {
    try {
      return await createPod(kube, namespace, desired, signal);
    } catch (error) {
      if (!(isStatus(error, 409) && error.reason === "AlreadyExists")) throw error;
    }
    try {
      return await getPod(kube, namespace, name, signal);
    } catch (error) {
      // Deleted between our create and get (an unrouted twin being cleaned up): create again.
      if (!isStatus(error, 404)) throw error;
      return AGAIN;
    }
  }, `pod ${namespace}/${name} keeps appearing and disappearing; retry later`);
}

/** Removes our scheduling gate; a concurrent remover (another replica) is not an error. */
async function releaseRoutingGate(kube: RestClient, pod: Pod, signal?: AbortSignal): Promise<Pod> {
  const { name, namespace } = pod.metadata as { name: string; namespace: string };
  return await retryOnConflict(3, async () => {
    const index = pod.spec?.schedulingGates?.findIndex((gate) => gate.name === ROUTING_GATE) ?? -1;
    if (index < 0) return pod;
    try {
      return await patchPod(kube, namespace, name, [
        // The test makes the removal exact: it fails (422) if the list changed since we read it.
        { op: "test", path: `/spec/schedulingGates/${index}/name`, value: ROUTING_GATE },
        { op: "remove", path: `/spec/schedulingGates/${index}` },
      ], signal);
    } catch (error) {
      if (!isStatus(error, 422, 409)) throw error;
    }
    pod = await getPod(kube, namespace, name, signal);
    return AGAIN;
  }, `pod ${namespace}/${name}: scheduling gate could not be removed; retry later`);
}

async function deleteIgnoringGone(kube: RestClient, namespace: string, name: string, uid: string | undefined, signal?: AbortSignal) {
  try {
    // Only ever a pod behind the routing gate (never schedulable, so it never ran): nothing to stop gracefully.
    await deletePod(kube, namespace, name, uid, { force: true, signal });
  } catch (error) {
    // 404: already gone. 409: the uid precondition failed, i.e. it is a newer pod, not the one we judged.
    if (!isStatus(error, 404, 409)) throw error;
  }
}
