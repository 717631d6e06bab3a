/**
 * `io.podgateway.client.release`: deletes one client pod, named directly (`pod_name`) or by the pending
 * event it was created for (`source` + `id`). Idempotent: releasing a pod that is gone is `done` again.
 * Only pods this service created are ever deleted.
 */
import type { CloudEventV1 } from "cloudevents";
import type { Pod } from "kubernetes-types/core/v1";
import * as v from "valibot";
import type { ResultStamp } from "../events/results.ts";
import { describeIssues, ReleaseData } from "../events/schema.ts";
import { isStatus } from "../kube/errors.ts";
import { AGAIN, retryOnConflict } from "../retry.ts";
import { deletePod, getPod } from "../kube/pods.ts";
import type { RestClient } from "../kube/rest-client.ts";
import {
  ANNOTATION_REQUEST_ID,
  ANNOTATION_REQUEST_SOURCE,
  clientPodName,
  LABEL_MANAGED_BY,
  MANAGED_BY,
} from "../provision/client-pod.ts";
import { LABEL_POOL } from "../pool/member.ts";
import { type CapacityOptions, releaseSlots } from "./capacity.ts";
import { neverRan } from "./client-state.ts";
import { releaseResult } from "./events.ts";

export interface ReleaseOptions {
  kube: RestClient;
  namespace: string;
  stamp: ResultStamp;
  /** When capacity is limited: the released pod's slot is freed at once, not when the pod is finally gone. */
  capacity?: CapacityOptions;
}

/**
 * Carries out one release event and returns its answer (`release.done` or `release.failed`).
 * @throws KubeTransportError or a transient KubeApiError: the sender should retry.
 */
export async function releaseClient(options: ReleaseOptions, event: CloudEventV1<unknown>, data: unknown, signal?: AbortSignal) {
  const { kube, namespace, stamp } = options;
  const parsed = v.safeParse(ReleaseData, data);
  if (!parsed.success) {
    return releaseResult(stamp, event, { type: "failed", data: { reason: "InvalidEventData", message: describeIssues(parsed.issues) } });
  }
  const request = "pod_name" in parsed.output ? undefined : parsed.output;
  const name = "pod_name" in parsed.output ? parsed.output.pod_name : clientPodName(parsed.output);

  return await retryOnConflict(3, async () => {
    let pod: Pod;
    try {
      pod = await getPod(kube, namespace, name, signal);
    } catch (error) {
      if (!isStatus(error, 404)) throw error;
      return releaseResult(stamp, event, {
        type: "done",
        data: { pod_name: name, namespace, message: released(namespace, name) },
      });
    }
    if (pod.metadata?.labels?.[LABEL_MANAGED_BY] !== MANAGED_BY) {
      return releaseResult(stamp, event, {
        type: "failed",
        data: { reason: "NotAClient", pod_name: name, message: `pod ${namespace}/${name} was not created by ${MANAGED_BY}; it is left alone` },
      });
    }
    if (pod.metadata.labels[LABEL_POOL] !== undefined) {
      return releaseResult(stamp, event, {
        type: "failed",
        data: { reason: "NotAClient", pod_name: name, message: `pod ${namespace}/${name} is an unclaimed warm pool member, no client; it is left alone` },
      });
    }
    const annotations = pod.metadata?.annotations ?? {};
    if (request && (annotations[ANNOTATION_REQUEST_SOURCE] !== request.source || annotations[ANNOTATION_REQUEST_ID] !== request.id)) {
      return releaseResult(stamp, event, {
        type: "failed",
        data: { reason: "NameConflict", pod_name: name, message: `pod ${namespace}/${name} was created for another request; it is left alone` },
      });
    }
    try {
      // The uid precondition: what we checked is what we delete, never a namesake created in between. A client
      // that may run gets its own grace period (SIGTERM, time for its teardown); only one that never ran goes at once.
      await deletePod(kube, namespace, name, pod.metadata?.uid, { force: neverRan(pod), signal });
    } catch (error) {
      if (isStatus(error, 409)) return AGAIN;
      if (!isStatus(error, 404)) throw error;
    }
    if (options.capacity && pod.metadata?.uid) await releaseSlots(options.capacity, pod.metadata.uid, signal);
    return releaseResult(stamp, event, {
      type: "done",
      data: { pod_name: name, namespace, message: released(namespace, name) },
    });
  }, `pod ${namespace}/${name} keeps being replaced; retry later`);
}

/** One message for every delivery of a release, whether it found the pod or an earlier delivery had deleted it. */
const released = (namespace: string, name: string) => `client pod ${namespace}/${name} is released: deleted, or already gone`;
