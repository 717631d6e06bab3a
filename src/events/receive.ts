import type { CloudEventV1 } from "cloudevents";
import { checkBinary, checkStructured, decodeHeaderValue } from "./envelope.ts";

/** Why a request is not one CloudEvent we can read; becomes a 4xx answer and loses nothing (the sender keeps it). */
export class UnreadableRequest extends Error {
  override name = "UnreadableRequest";
  readonly status: 400 | 415;
  constructor(status: 400 | 415, message: string) {
    super(message);
    this.status = status;
  }
}

const BATCH = "application/cloudevents-batch";

/**
 * Reads one CloudEvent (1.0 or 0.3, binary or structured mode) from an HTTP request. The attributes are checked
 * by src/events/envelope.ts; the body is parsed once (no CloudEvents SDK at run time: its reader, used before,
 * parsed a structured event twice and built its validation errors eagerly). Batched mode is refused: a batch would need one
 * answer per event, and Knative never batches.
 */
export async function receiveEvent(request: Request): Promise<CloudEventV1<unknown>> {
  const contentType = request.headers.get("content-type")?.toLowerCase() ?? "";
  const mediaType = contentType.split(";")[0]!.trim();
  if (mediaType.startsWith(BATCH)) {
    throw new UnreadableRequest(415, "batched mode (application/cloudevents-batch+json) is not supported: send one event per request, in binary or structured mode");
  }
  const structured = mediaType.startsWith("application/cloudevents");
  if (structured && mediaType !== "application/cloudevents+json") {
    throw new UnreadableRequest(415, `structured mode supports only application/cloudevents+json, not ${mediaType}`);
  }
  if (!structured && !request.headers.has("ce-specversion")) {
    throw new UnreadableRequest(400, "not a CloudEvent: binary mode needs the ce-specversion, ce-id, ce-source and ce-type headers; structured mode needs Content-Type application/cloudevents+json");
  }

  const body = await request.text();
  if (structured) {
    // One parse: the object checked is the object used.
    const event = parseJson(body, "the structured event");
    const problem = checkStructured(event);
    if (problem) throw new UnreadableRequest(400, `invalid CloudEvent: ${problem}`);
    return fromStructured(event as Record<string, unknown>);
  }
  const attributes: Record<string, unknown> = {};
  request.headers.forEach((value, key) => {
    if (key.startsWith("ce-")) attributes[key.slice(3)] = decodeHeaderValue(value);
  });
  const problem = checkBinary(attributes as Record<string, string>);
  if (problem) throw new UnreadableRequest(400, `invalid CloudEvent: ${problem}`);
  if (contentType) attributes.datacontenttype = request.headers.get("content-type");
  attributes.data = !body ? undefined : isJson(mediaType) ? parseJson(body, "the event data") : body;
  return attributes as unknown as CloudEventV1<unknown>;
}

/** `data_base64` (1.0) and base64 `datacontentencoding` (0.3) carry bytes; everything else is as sent. */
function fromStructured(event: Record<string, unknown>): CloudEventV1<unknown> {
  const { data_base64: base64, ...attributes } = event;
  const encoded = typeof base64 === "string" ? base64 : attributes.datacontentencoding === "base64" ? attributes.data : undefined;
  if (encoded !== undefined) {
    delete attributes.datacontentencoding;
    attributes.data = decodeBase64(encoded);
  }
  return attributes as unknown as CloudEventV1<unknown>;
}

function decodeBase64(encoded: unknown): Uint8Array {
  try {
    return Uint8Array.from(atob(String(encoded)), (character) => character.charCodeAt(0));
  } catch {
    throw new UnreadableRequest(400, "invalid CloudEvent: the event data is not valid base64");
  }
}

/** JSON media types: `application/json` and any `+json` suffix (RFC 6839). */
function isJson(mediaType: string): boolean {
  return mediaType === "application/json" || mediaType.endsWith("+json");
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new UnreadableRequest(400, `invalid CloudEvent: ${what} is not valid JSON`);
  }
}
