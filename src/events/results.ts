import { createHash } from "node:crypto";
import { CloudEvent, type CloudEventV1, HTTP } from "cloudevents";
import { encodeHeaderValue } from "./envelope.ts";
import type { DoneData, FailedData } from "./schema.ts";
import { EventTypes } from "./types.ts";

/** How result events are stamped: our source and the extensions of Knative's `K_CE_OVERRIDES`. */
export interface ResultStamp {
  source: string;
  extensions: Record<string, string>;
}

/**
 * A result event for a request. Its id is fresh (never the request's) yet derived from the request and the
 * outcome, so a redelivered request gets the very same answer and a broker can drop the duplicate.
 * `causationid`/`causationsource` (the CloudEvents correlation extension's naming) carry the request's id and source.
 */
function resultEvent<T>(
  stamp: ResultStamp,
  request: Pick<CloudEventV1<unknown>, "id" | "source">,
  type: string,
  subject: string | undefined,
  data: T,
  time?: string,
): CloudEventV1<T> {
  const id = createHash("sha256").update(type).update("\0").update(request.source).update("\0").update(request.id)
    .digest("hex").slice(0, 32);
  return new CloudEvent<T>({
    ...stamp.extensions,
    id,
    type,
    source: stamp.source,
    subject,
    time,
    datacontenttype: "application/json",
    causationid: request.id,
    causationsource: request.source,
    data,
  }, false);
}

export function doneEvent(stamp: ResultStamp, request: Pick<CloudEventV1<unknown>, "id" | "source">, data: DoneData, createdAt?: string) {
  // The pod's creation time, not "now": every delivery of one request gets a byte-identical answer.
  return resultEvent(stamp, request, EventTypes.done, data.pod_name, data, createdAt);
}

export function failedEvent(stamp: ResultStamp, request: Pick<CloudEventV1<unknown>, "id" | "source">, data: FailedData, podName?: string) {
  return resultEvent(stamp, request, EventTypes.failed, podName, data);
}

/** An HTTP response carrying the event in binary mode: Knative's reply to the sender. */
export function replyWith(event: CloudEventV1<unknown>, status = 200): Response {
  const message = HTTP.binary(event);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(message.headers)) {
    // The request's id and source come back as causationid/causationsource: anything a sender put there
    // must survive as a header value.
    headers[name] = name.startsWith("ce-") ? encodeHeaderValue(String(value)) : String(value);
  }
  return new Response(message.body as string, { status, headers });
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
