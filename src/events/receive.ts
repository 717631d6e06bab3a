import { type CloudEventV1, HTTP, ValidationError } from "cloudevents";
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
 * Reads one CloudEvent (1.0 or 0.3, binary or structured mode) from an HTTP request with the CloudEvents SDK.
 * Batched mode is refused: a batch would need one answer per event, and Knative never batches.
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

  const headers: Record<string, string> = {};
  const attributes: Record<string, string> = {};
  request.headers.forEach((value, key) => {
    if (key.startsWith("ce-")) attributes[key.slice(3)] = decodeHeaderValue(value);
    else headers[key] = value;
  });
  const body = await request.text();
  let problem: string | undefined;
  if (structured) {
    // The SDK is strict about the spelling of this header; the media type is what matters.
    headers["content-type"] = "application/cloudevents+json";
    problem = checkStructured(parseJson(body));
  } else {
    headers["content-type"] = contentType;
    for (const [name, value] of Object.entries(attributes)) headers[`ce-${name}`] = value;
    problem = checkBinary(attributes);
  }
  if (problem) throw new UnreadableRequest(400, `invalid CloudEvent: ${problem}`);

  try {
    const event = HTTP.toEvent({ headers, body });
    if (Array.isArray(event)) throw new UnreadableRequest(415, "batched mode is not supported: send one event per request");
    return event as CloudEventV1<unknown>;
  } catch (error) {
    if (error instanceof UnreadableRequest) throw error;
    throw new UnreadableRequest(400, `invalid CloudEvent: ${explain(error)}`);
  }
}

function parseJson(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    throw new UnreadableRequest(400, "invalid CloudEvent: the structured event is not valid JSON");
  }
}

function explain(error: unknown): string {
  if (error instanceof ValidationError) {
    const details = (error.errors ?? []).map((entry) => typeof entry === "string" ? entry : JSON.stringify(entry));
    return [error.message, ...details].filter(Boolean).join("; ").slice(0, 500);
  }
  return error instanceof Error ? error.message.slice(0, 500) : String(error);
}
