import type { CloudEventV1 } from "cloudevents";
import { digest } from "../util/digest.ts";
import { binaryMessage } from "./envelope.ts";
import type { DoneData, FailedData } from "./schema.ts";
import { EventTypes } from "./types.ts";

/** How result events are stamped: our source and the extensions of Knative's `K_CE_OVERRIDES`. */
export interface ResultStamp {
  source: string;
  extensions: Record<string, string>;
}

/** What an event this service emits is made of; everything in it must be derived, never "now" or random. */
export interface DerivedEventSpec<T> {
  type: string;
  /** What the event is about, e.g. the request's source and id, or a pod's uid and transition: hashed into the id. */
  key: string[];
  subject?: string;
  /** When it happened, read from the request or the pod; left out when neither says. */
  time?: string;
  /** The request this event answers or follows (the CloudEvents correlation extension's naming). */
  causation?: { id?: string; source?: string };
  data: T;
}

/**
 * The one builder of the events this service emits. Its id is fresh (never the request's) yet derived from
 * `type` and `key`, and its time from the request or the pod: built again — a redelivered request, a new
 * leader resuming — it is byte-identical, so a broker or consumer drops the duplicate.
 * A plain frozen object, not the SDK's class: that one stamps the current time on an event without one.
 */
export function derivedEvent<T>(stamp: ResultStamp, spec: DerivedEventSpec<T>): CloudEventV1<T> {
  const event: Record<string, unknown> = {
    ...stamp.extensions,
    specversion: "1.0",
    id: digest(spec.type, ...spec.key).slice(0, 32),
    type: spec.type,
    source: stamp.source,
    datacontenttype: "application/json",
    data: spec.data,
  };
  if (spec.subject) event.subject = spec.subject;
  // RFC 3339 whatever form the request or the pod gave it in (a sender's time may be any date Date.parse reads).
  if (spec.time && Number.isFinite(Date.parse(spec.time))) event.time = new Date(spec.time).toISOString();
  if (spec.causation?.id) event.causationid = spec.causation.id;
  if (spec.causation?.source) event.causationsource = spec.causation.source;
  return Object.freeze(event) as unknown as CloudEventV1<T>;
}

type Request = Pick<CloudEventV1<unknown>, "id" | "source" | "time">;

/** The answer to a request: keyed on the request, and as old as the request says it is. */
export function answerEvent<T>(stamp: ResultStamp, request: Request, type: string, data: T, subject?: string, time = request.time) {
  return derivedEvent(stamp, { type, key: [request.source, request.id], subject, time, causation: request, data });
}

export function doneEvent(stamp: ResultStamp, request: Request, data: DoneData, createdAt?: string) {
  // The pod's creation time: every delivery of one request meets the same pod.
  return answerEvent(stamp, request, EventTypes.done, data, data.pod_name, createdAt);
}

export function failedEvent(stamp: ResultStamp, request: Request, data: FailedData, podName?: string) {
  // The request's own time: a failure may have deleted the pod, and a redelivery would meet a newer one.
  return answerEvent(stamp, request, EventTypes.failed, data, podName);
}

/** An HTTP response carrying the event in binary mode: Knative's reply to the sender. */
export function replyWith(event: CloudEventV1<unknown>, status = 200): Response {
  const { headers, body } = binaryMessage(event);
  return new Response(body, { status, headers });
}

/**
 * Parses Knative's `K_CE_OVERRIDES` (`{"extensions": {"name": "value"}}`).
 * @throws Error naming the problem, so a bad deployment fails at start-up rather than per event.
 */
export function parseCeOverrides(raw: string | undefined): Record<string, string> {
  if (!raw) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new Error("K_CE_OVERRIDES is not valid JSON");
  }
  const extensions = (parsed as { extensions?: unknown })?.extensions ?? {};
  if (typeof extensions !== "object" || extensions === null || Array.isArray(extensions)) {
    throw new Error('K_CE_OVERRIDES must look like {"extensions": {"name": "value"}}');
  }
  const result: Record<string, string> = {};
  for (const [name, value] of Object.entries(extensions)) {
    if (!/^[a-z0-9]{1,20}$/.test(name)) throw new Error(`K_CE_OVERRIDES: extension name "${name}" must be 1-20 lowercase letters or digits`);
    result[name] = String(value);
  }
  return result;
}
