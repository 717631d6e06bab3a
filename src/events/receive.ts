import { type CloudEventV1, HTTP, ValidationError } from "cloudevents";

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
  if (contentType.startsWith(BATCH)) {
    throw new UnreadableRequest(415, "batched mode (application/cloudevents-batch+json) is not supported: send one event per request, in binary or structured mode");
  }
  const structured = contentType.startsWith("application/cloudevents");
  if (structured && !contentType.startsWith("application/cloudevents+json")) {
    throw new UnreadableRequest(415, `structured mode supports only application/cloudevents+json, not ${contentType}`);
  }
  if (!structured && !request.headers.has("ce-specversion")) {
    throw new UnreadableRequest(400, "not a CloudEvent: binary mode needs the ce-specversion, ce-id, ce-source and ce-type headers; structured mode needs Content-Type application/cloudevents+json");
  }

  const headers: Record<string, string> = {};
  request.headers.forEach((value, key) => {
    headers[key] = value;
  });
  const body = await request.text();
  try {
    const event = HTTP.toEvent({ headers, body });
    if (Array.isArray(event)) throw new UnreadableRequest(415, "batched mode is not supported: send one event per request");
    return event as CloudEventV1<unknown>;
  } catch (error) {
    if (error instanceof UnreadableRequest) throw error;
    throw new UnreadableRequest(400, `invalid CloudEvent: ${explain(error)}`);
  }
}

function explain(error: unknown): string {
  if (error instanceof ValidationError) {
    const details = (error.errors ?? []).map((entry) => typeof entry === "string" ? entry : JSON.stringify(entry));
    return [error.message, ...details].filter(Boolean).join("; ").slice(0, 500);
  }
  return error instanceof Error ? error.message.slice(0, 500) : String(error);
}
