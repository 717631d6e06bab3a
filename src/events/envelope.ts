import type { CloudEventV1 } from "cloudevents";
import * as v from "valibot";

/**
 * The CloudEvents context attributes we accept, checked on the raw request (src/events/receive.ts; no
 * CloudEvents SDK runs in the service): an event without an `id` is refused, never given one (every
 * redelivery would then make a new pod), and attribute names and values that the spec forbids are refused.
 */
const Text = (what: string) => v.pipe(v.string(`${what} must be a string`), v.nonEmpty(`${what} must not be empty`));

/** Attribute names: lower-case ASCII letters and digits (CloudEvents 1.0 §Attribute Naming Convention). */
export const ATTRIBUTE_NAME = /^[a-z0-9]+$/;

const Required = v.object({
  specversion: v.picklist(["1.0", "0.3"], "specversion must be 1.0 or 0.3"),
  id: Text("id"),
  source: Text("source"),
  type: Text("type"),
});

/** Names with a meaning of their own in structured mode, besides the attributes. */
const STRUCTURED_MEMBERS = new Set(["data", "data_base64"]);

/** Attribute values: string, integer or boolean (the spec's types all serialise to one of these in JSON). */
const AttributeValue = v.union([v.string(), v.pipe(v.number(), v.integer()), v.boolean()]);

/** A structured-mode event: a JSON object with the required attributes and well-formed extensions. */
export function checkStructured(body: unknown): string | undefined {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return "a structured event must be a JSON object";
  const required = v.safeParse(Required, body);
  if (!required.success) return attributeProblem(required.issues);
  for (const [name, value] of Object.entries(body)) {
    if (STRUCTURED_MEMBERS.has(name)) continue;
    if (!ATTRIBUTE_NAME.test(name)) return `attribute name "${name.slice(0, 40)}" must be lower-case letters and digits`;
    if (value !== null && !v.is(AttributeValue, value)) return `attribute ${name} must be a string, an integer or a boolean`;
  }
  return undefined;
}

/** A binary-mode event: the required `ce-` headers, and extension headers with valid names. */
export function checkBinary(attributes: Record<string, string>): string | undefined {
  const required = v.safeParse(Required, attributes);
  if (!required.success) return attributeProblem(required.issues, "ce-");
  for (const name of Object.keys(attributes)) {
    if (!ATTRIBUTE_NAME.test(name)) return `header ce-${name.slice(0, 40)}: attribute names must be lower-case letters and digits`;
  }
  return undefined;
}

function attributeProblem(issues: readonly v.BaseIssue<unknown>[], prefix = ""): string {
  const issue = issues[0]!;
  const key = v.getDotPath(issue);
  return issue.received === "undefined" && key ? `the required attribute ${prefix}${key} is missing` : issue.message;
}

/**
 * HTTP binding §3.1.3.2: header values carry space, `"`, `%` and anything outside printable ASCII
 * percent-encoded as UTF-8. Receivers decode them; senders (our replies) encode them.
 */
export function encodeHeaderValue(value: string): string {
  return value.replace(/[^\x21\x23-\x24\x26-\x7e]/gu, (character) =>
    Array.from(new TextEncoder().encode(character), (byte) => `%${byte.toString(16).toUpperCase().padStart(2, "0")}`).join(""));
}

/**
 * An event as an HTTP message in binary mode (HTTP binding §3.1.3): every attribute a `ce-` header, value
 * percent-encoded, the data the body in its content type: the message the SDK's `HTTP.binary` makes for the
 * events we emit (plain derived objects with JSON data; the tests read it back with the SDK). The SDK itself is
 * not used at run time: its class, validation and dependencies were a fifth of the single executable's idle
 * memory (BENCHMARKS.md).
 */
export function binaryMessage(event: CloudEventV1<unknown>): { headers: Record<string, string>; body: string } {
  const headers: Record<string, string> = { "content-type": event.datacontenttype ?? "application/json" };
  for (const [name, value] of Object.entries(event)) {
    if (name === "data" || name === "datacontenttype" || value === undefined || value === null) continue;
    headers[`ce-${name}`] = encodeHeaderValue(String(value));
  }
  return { headers, body: event.data === undefined ? "" : JSON.stringify(event.data) };
}

export function decodeHeaderValue(value: string): string {
  if (!value.includes("%")) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    return value; // Not valid percent-encoding: take it literally, as senders predating the rule meant it.
  }
}
