/** The events of a client's life and of releases, built by the one builder of derived events. */
import type { CloudEventV1 } from "cloudevents";
import { answerEvent, derivedEvent, type ResultStamp } from "../events/results.ts";
import type { ClientLifecycleData, ReleaseDoneData, ReleaseFailedData } from "../events/schema.ts";
import { EventTypes } from "../events/types.ts";
import { ANNOTATION_REQUEST_ID, ANNOTATION_REQUEST_SOURCE } from "../provision/client-pod.ts";
import { readySince, type TrackedPod, type Transition } from "./client-state.ts";

const TYPE_OF: Record<Transition, string> = {
  ready: EventTypes.clientReady,
  failed: EventTypes.clientFailed,
  deleted: EventTypes.clientDeleted,
};

/**
 * The event of one transition of one pod, keyed on the pod's uid and the transition; its time is when the pod
 * says it happened (`failedAt`: `Failure.at` of client-state.ts), so a redelivery (after a failed delivery, a restart or a new leader) is
 * the same event. `causationid`/`causationsource` are the pending event's, read from the pod's annotations.
 */
export function lifecycleEvent(
  stamp: ResultStamp,
  pod: TrackedPod,
  transition: Transition,
  data: ClientLifecycleData,
  failedAt?: string,
): CloudEventV1<ClientLifecycleData> {
  const annotations = pod.metadata?.annotations ?? {};
  const time = transition === "ready" ? readySince(pod) : transition === "deleted" ? pod.metadata?.deletionTimestamp : failedAt;
  return derivedEvent(stamp, {
    type: TYPE_OF[transition],
    key: [pod.metadata?.uid ?? pod.metadata?.name ?? "", transition],
    subject: pod.metadata?.name,
    time,
    causation: { id: annotations[ANNOTATION_REQUEST_ID], source: annotations[ANNOTATION_REQUEST_SOURCE] },
    data,
  });
}

/** The answer to a release event: deterministic per request and outcome, like the scheduling results. */
export function releaseResult(
  stamp: ResultStamp,
  request: Pick<CloudEventV1<unknown>, "id" | "source" | "time">,
  result: { type: "done"; data: ReleaseDoneData } | { type: "failed"; data: ReleaseFailedData },
): CloudEventV1<ReleaseDoneData | ReleaseFailedData> {
  const type = result.type === "done" ? EventTypes.releaseDone : EventTypes.releaseFailed;
  return answerEvent<ReleaseDoneData | ReleaseFailedData>(stamp, request, type, result.data, result.data.pod_name);
}
