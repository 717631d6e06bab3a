/** The events of a client's life and of releases, with ids that are the same however often they are made. */
import { createHash } from "node:crypto";
import { CloudEvent, type CloudEventV1 } from "cloudevents";
import type { Pod } from "kubernetes-types/core/v1";
import type { ResultStamp } from "../events/results.ts";
import type { ClientLifecycleData, ReleaseDoneData, ReleaseFailedData } from "../events/schema.ts";
import { EventTypes } from "../events/types.ts";
import { ANNOTATION_REQUEST_ID, ANNOTATION_REQUEST_SOURCE } from "../provision/client-pod.ts";
import { readySince, type Transition } from "./client-state.ts";

const TYPE_OF: Record<Transition, string> = {
  ready: EventTypes.clientReady,
  failed: EventTypes.clientFailed,
  deleted: EventTypes.clientDeleted,
};

const digest = (...parts: string[]) => createHash("sha256").update(parts.join("\0")).digest("hex").slice(0, 32);

/**
 * The event of one transition of one pod. Its id is derived from the pod's uid and the transition, so a
 * redelivery (after a failed delivery or a restart) carries the same id and a broker or consumer can drop it.
 * `causationid`/`causationsource` are the pending event's id and source, read from the pod's annotations.
 */
export function lifecycleEvent(stamp: ResultStamp, pod: Pod, transition: Transition, data: ClientLifecycleData): CloudEventV1<ClientLifecycleData> {
  const annotations = pod.metadata?.annotations ?? {};
  const time = transition === "ready" ? readySince(pod) : transition === "deleted" ? pod.metadata?.deletionTimestamp : undefined;
  return new CloudEvent<ClientLifecycleData>({
    ...stamp.extensions,
    id: digest(TYPE_OF[transition], pod.metadata?.uid ?? pod.metadata?.name ?? "", transition),
    type: TYPE_OF[transition],
    source: stamp.source,
    subject: pod.metadata?.name,
    ...(time ? { time } : {}),
    datacontenttype: "application/json",
    ...(annotations[ANNOTATION_REQUEST_ID] ? { causationid: annotations[ANNOTATION_REQUEST_ID] } : {}),
    ...(annotations[ANNOTATION_REQUEST_SOURCE] ? { causationsource: annotations[ANNOTATION_REQUEST_SOURCE] } : {}),
    data,
  }, false);
}

/** The answer to a release event: deterministic per request and outcome, like the scheduling results. */
export function releaseResult(
  stamp: ResultStamp,
  request: Pick<CloudEventV1<unknown>, "id" | "source">,
  result: { type: "done"; data: ReleaseDoneData } | { type: "failed"; data: ReleaseFailedData },
): CloudEventV1<ReleaseDoneData | ReleaseFailedData> {
  const type = result.type === "done" ? EventTypes.releaseDone : EventTypes.releaseFailed;
  return new CloudEvent<ReleaseDoneData | ReleaseFailedData>({
    ...stamp.extensions,
    id: digest(type, request.source, request.id),
    type,
    source: stamp.source,
    subject: result.data.pod_name,
    datacontenttype: "application/json",
    causationid: request.id,
    causationsource: request.source,
    data: result.data,
  }, false);
}
