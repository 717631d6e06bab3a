/**
 * Every event the service sends, as the tests receive it (an HTTP answer, a delivery to K_SINK), is decoded here
 * and held to the data schema of its type (src/events/schema.ts `OutputData`): each e2e test checks the contract.
 */
import { type CloudEventV1, HTTP } from "cloudevents";
import * as v from "valibot";
import { describeIssues, OutputData } from "../../src/events/schema.ts";

export type ReceivedEvent = CloudEventV1<Record<string, string>>;

/**
 * The event in an HTTP message (binary or structured mode), its data checked against its type's schema.
 * @throws Error naming the broken field when the data breaks the schema of a type the service sends.
 */
export function receivedEvent(headers: Record<string, string>, body: string): ReceivedEvent {
  const event = HTTP.toEvent({ headers, body }) as ReceivedEvent;
  checkData(event.type, event.data);
  return event;
}

/** An HTTP answer's event, or undefined when it carries none (no `ce-type`: an error or retry answer). */
export function replyEvent(headers: Record<string, string>, body: string): ReceivedEvent | undefined {
  return headers["ce-type"] ? receivedEvent(headers, body) : undefined;
}

/** Throws unless `data` fits the schema of `type` (types the service does not send pass). */
export function checkData(type: string, data: unknown): void {
  const schema = OutputData[type];
  if (!schema) return;
  const result = v.safeParse(schema, data);
  if (!result.success) throw new Error(`${type} breaks its schema: ${describeIssues(result.issues)}: ${JSON.stringify(data)}`);
}
