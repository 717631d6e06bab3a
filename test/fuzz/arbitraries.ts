/**
 * fast-check generators of HTTP requests to the service (headers, content types, bodies; binary and structured
 * CloudEvents, near-valid and hostile), and the oracle that says what the answer to each may be. Shared by the
 * CI-sized property tests (test/unit/fuzz.test.ts) and the dedicated ≥100,000-request run (test/fuzz/run.ts).
 */
import fc from "fast-check";
import { checkData } from "../support/received.ts";

export const PENDING = "io.podgateway.client.pending";
const LABEL_VALUE = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const EXTENSION_NAME = /^[a-z0-9]+$/;
const CONTEXT_ATTRIBUTES = new Set(["specversion", "id", "source", "type", "datacontenttype", "dataschema", "subject", "time", "data", "data_base64", "datacontentencoding", "schemaurl"]);

/** A generated request, with what the generator knows about it (for the oracle). */
export interface FuzzRequest {
  kind: "binary" | "structured" | "raw";
  method: string;
  path: string;
  headers: [string, string][];
  body: string;
  /** Whether this request is a spec-valid pending event whose data passes the schema: only these may reach Kubernetes. */
  provisionable: boolean;
  /**
   * The one status the spec leaves: 415 for batched or non-JSON structured mode, 400 for what is certainly not a
   * valid CloudEvent (a required attribute missing, empty or of the wrong type, an unknown specversion, an invalid
   * extension name or value). Undefined when several answers are fine.
   */
  expected?: 400 | 415;
  /** For provisionable ones: the (source, id) pair and gateway, to check pods afterwards. */
  source?: string;
  id?: string;
  gateway?: string;
}

// ---------------------------------------------------------------- pieces

/** Printable ASCII and Latin-1: what a header value can carry through fetch's Headers. */
const headerChar = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0x20, max: 0x7e }) },
  { weight: 1, arbitrary: fc.integer({ min: 0xa0, max: 0xff }) },
).map((code) => String.fromCharCode(code));
const headerValue = (maxLength = 40) => fc.string({ unit: headerChar, maxLength }).map((text) => text.trim());
const anyText = (maxLength = 40) =>
  fc.oneof(
    fc.string({ unit: fc.constantFrom("a", "Z", "0", "-", "_", ".", " ", "\n", "/", "é", "网", "😀", "\u0000"), maxLength }),
    fc.string({ unit: "grapheme", maxLength }),
    fc.string({ unit: "binary-ascii", maxLength }),
  );

export const validGateway = fc.oneof(
  fc.constantFrom("foo", "bar", "baz", "a", "A1", "x.y_z-0"),
  fc.stringMatching(LABEL_VALUE).filter((text) => text.length <= 63),
);
export const invalidGateway = fc.oneof(
  fc.constantFrom("", "-foo", "foo-", ".foo", "foo.", "foo bar", "foo/bar", "foo\n", "föö", "网关", "foo\u200b", "ｆｏｏ", "foo😀", "\u202efoo", "a".repeat(64), "b".repeat(5000)),
  anyText(80).filter((text) => !(LABEL_VALUE.test(text) && text.length <= 63)),
  fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 3 })),
);
const gatewayName = fc.oneof({ weight: 2, arbitrary: validGateway }, { weight: 3, arbitrary: invalidGateway });
const message = fc.oneof(fc.constant(undefined), fc.string({ maxLength: 30 }), fc.string({ minLength: 1025, maxLength: 1100 }), fc.integer());

/** Event data: usually an object with a gateway_name, sometimes anything at all. */
const data = fc.oneof(
  { weight: 6, arbitrary: fc.record({ gateway_name: gatewayName, message }, { requiredKeys: ["gateway_name"] }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.constant({}) },
);

const specversion = fc.oneof({ weight: 8, arbitrary: fc.constantFrom("1.0", "0.3") }, { weight: 1, arbitrary: fc.constantFrom("2.0", "1", "", "1.0 ", "0.2") });
const eventType = fc.oneof({ weight: 8, arbitrary: fc.constant(PENDING) }, { weight: 1, arbitrary: fc.constantFrom("com.example.other", `${PENDING}.v2`, "IO.PODGATEWAY.CLIENT.PENDING") });
const contentTypes = ["application/json", "application/json; charset=utf-8", "text/plain", "application/xml", "application/octet-stream", "", "application/cloudevents+json", "application/cloudevents-batch+json", "application/cloudevents+xml", "multipart/form-data; boundary=x", "APPLICATION/JSON"];

/** Extension attribute names: valid ones, over-long ones (allowed: SHOULD NOT), and invalid ones. */
const extensionName = fc.oneof(
  { weight: 3, arbitrary: fc.stringMatching(/^[a-z0-9]{1,20}$/) },
  { weight: 1, arbitrary: fc.stringMatching(/^[a-z0-9]{21,40}$/) },
  { weight: 2, arbitrary: fc.stringMatching(/^[a-z0-9]{0,5}[_-][a-z0-9_-]{0,10}$/) },
).filter((name) => !CONTEXT_ATTRIBUTES.has(name));
const extensionValue = fc.oneof(
  { weight: 6, arbitrary: headerValue(30) },
  { weight: 1, arbitrary: fc.string({ unit: fc.constant("x"), minLength: 4000, maxLength: 9000 }) },
);

// ---------------------------------------------------------------- requests

/** Binary mode: ce-* headers, each required one sometimes missing, empty or odd; extensions; any content type. */
export const binaryRequest: fc.Arbitrary<FuzzRequest> = fc.record({
  specversion: fc.option(specversion, { freq: 10 }),
  id: fc.option(fc.oneof({ weight: 6, arbitrary: headerValue(30).filter((text) => text.length > 0) }, { weight: 1, arbitrary: fc.constant("") }), { freq: 10 }),
  source: fc.option(fc.oneof({ weight: 6, arbitrary: headerValue(30).filter((text) => text.length > 0) }, { weight: 1, arbitrary: fc.constant("") }), { freq: 10 }),
  type: fc.option(eventType, { freq: 10 }),
  contentType: fc.oneof({ weight: 6, arbitrary: fc.constant("application/json") }, { weight: 3, arbitrary: fc.constantFrom(...contentTypes) }, { weight: 1, arbitrary: headerValue(30) }),
  extensions: fc.array(fc.tuple(extensionName, extensionValue), { maxLength: 3 }),
  body: fc.oneof({ weight: 8, arbitrary: data.map((value) => JSON.stringify(value) ?? "") }, { weight: 1, arbitrary: fc.string({ maxLength: 60 }) }, { weight: 1, arbitrary: fc.constant("") }),
}).map((raw) => {
  // What arrives: fetch's Headers trim values, and the HTTP binding (§3.1.3.2) percent-decodes ce- values.
  const arrives = (value: string | null) => value === null ? null : percentDecoded(value.trim());
  const r = { ...raw, specversion: arrives(raw.specversion), id: arrives(raw.id), source: arrives(raw.source), type: arrives(raw.type) };
  const headers: [string, string][] = [];
  if (raw.specversion !== null) headers.push(["ce-specversion", raw.specversion]);
  if (raw.id !== null) headers.push(["ce-id", raw.id]);
  if (raw.source !== null) headers.push(["ce-source", raw.source]);
  if (raw.type !== null) headers.push(["ce-type", raw.type]);
  if (r.contentType) headers.push(["content-type", r.contentType]);
  const seen = new Set(headers.map(([name]) => name));
  for (const [name, value] of r.extensions) {
    if (seen.has(`ce-${name}`)) continue;
    seen.add(`ce-${name}`);
    headers.push([`ce-${name}`, value]);
  }
  const contentType = (r.contentType || "text/plain;charset=UTF-8").toLowerCase(); // what fetch sends for a string body
  let expected: FuzzRequest["expected"];
  if (contentType.startsWith("application/cloudevents-batch")) expected = 415;
  else if (contentType.startsWith("application/cloudevents") && !contentType.startsWith("application/cloudevents+json")) expected = 415;
  else if (contentType.startsWith("application/cloudevents+json")) expected = 400; // the body is event data, not an event
  else if (
    r.specversion === null || !["1.0", "0.3"].includes(r.specversion) || !r.id || !r.source || r.type === null ||
    r.extensions.some(([name]) => !EXTENSION_NAME.test(name))
  ) expected = 400;
  return classify({ kind: "binary", method: "POST", path: "/", headers, body: r.body, provisionable: false, expected }, {
    specversion: r.specversion,
    id: r.id,
    source: r.source,
    type: r.type,
    extensionNames: r.extensions.map(([name]) => name),
    contentType: r.contentType,
    body: r.body,
  });
});

/** Structured mode: a JSON object whose attributes are sometimes missing, empty, of the wrong type or hostile. */
export const structuredRequest: fc.Arbitrary<FuzzRequest> = fc.record({
  specversion: fc.option(fc.oneof({ weight: 8, arbitrary: specversion }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 1 }) }), { freq: 10 }),
  id: fc.option(fc.oneof({ weight: 6, arbitrary: fc.string({ minLength: 1, maxLength: 30 }) }, { weight: 1, arbitrary: fc.constantFrom("", "a\nb", "事件", "😀", "\u0000") }, { weight: 1, arbitrary: fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.constant({})) }), { freq: 10 }),
  source: fc.option(fc.oneof({ weight: 6, arbitrary: fc.string({ minLength: 1, maxLength: 30 }) }, { weight: 1, arbitrary: fc.constantFrom("", "/ü/😀", "\r\n") }, { weight: 1, arbitrary: fc.oneof(fc.integer(), fc.constant(null)) }), { freq: 10 }),
  type: fc.option(fc.oneof({ weight: 8, arbitrary: eventType }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 1 }) }), { freq: 10 }),
  extensions: fc.array(fc.tuple(fc.oneof(extensionName, fc.constantFrom("Bad", "__proto__", "constructor", "toJSON", "validate", "cloneWith")), fc.oneof(fc.string({ maxLength: 20 }), fc.integer(), fc.boolean(), fc.constant({ nested: true }), fc.constant([1]))), { maxLength: 3 }),
  data: fc.option(data, { freq: 10 }),
  contentType: fc.oneof(
    { weight: 12, arbitrary: fc.constantFrom("application/cloudevents+json", "application/cloudevents+json; charset=utf-8") },
    { weight: 1, arbitrary: fc.constantFrom("application/cloudevents+json;charset=utf-8", "application/cloudevents+json; charset=UTF-8", "Application/CloudEvents+JSON") },
  ),
  wrap: fc.oneof({ weight: 20, arbitrary: fc.constant("object") }, { weight: 1, arbitrary: fc.constantFrom("array", "string", "null", "number", "truncated") }),
}).map((r) => {
  const event: Record<string, unknown> = {};
  if (r.specversion !== null) event.specversion = r.specversion;
  if (r.id !== null) event.id = r.id;
  if (r.source !== null) event.source = r.source;
  if (r.type !== null) event.type = r.type;
  const added: [string, unknown][] = [];
  for (const [name, value] of r.extensions) {
    if (Object.hasOwn(event, name)) continue;
    Object.defineProperty(event, name, { value, enumerable: true, writable: true, configurable: true });
    added.push([name, value]);
  }
  if (r.data !== null) event.data = r.data;
  const json = JSON.stringify(event);
  const body = r.wrap === "object" ? json : r.wrap === "array" ? `[${json}]` : r.wrap === "string" ? JSON.stringify(json) : r.wrap === "null" ? "null" : r.wrap === "number" ? "7" : json.slice(0, -1);
  const isString = (value: unknown): value is string => typeof value === "string" && value.length > 0;
  const malformed = r.wrap !== "object" || !isString(r.id) || !isString(r.source) || !isString(r.type) || !["1.0", "0.3"].includes(r.specversion as string) ||
    added.some(([name, value]) => !EXTENSION_NAME.test(name) || (typeof value === "object" && value !== null));
  return classify({ kind: "structured", method: "POST", path: "/", headers: [["content-type", r.contentType]], body, provisionable: false, expected: malformed ? 400 : undefined }, {
    specversion: r.specversion,
    id: r.id,
    source: r.source,
    type: r.type,
    extensionNames: added.map(([name]) => name),
    contentType: "application/json",
    data: r.data,
    wholeIsObject: r.wrap === "object",
  });
});

/** Anything else: other methods and paths, no ce-* headers, odd content types, garbage and big bodies. */
export const rawRequest: fc.Arbitrary<FuzzRequest> = fc.record({
  method: fc.constantFrom("POST", "POST", "POST", "GET", "PUT", "DELETE", "PATCH", "OPTIONS"),
  path: fc.oneof({ weight: 6, arbitrary: fc.constant("/") }, { weight: 1, arbitrary: fc.constantFrom("/healthz", "/readyz", "/metrics", "//", "/x", "/?a=b", "/%2e%2e/") }),
  headers: fc.array(fc.tuple(fc.stringMatching(/^[a-z][a-z0-9-]{0,15}$/), headerValue(40)), { maxLength: 4 }),
  contentType: fc.option(fc.constantFrom(...contentTypes), { freq: 3 }),
  body: fc.oneof(fc.string({ maxLength: 100 }), fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.stringify(value) ?? ""), fc.constant(""), fc.integer({ min: 1, max: 3 }).map((n) => "z".repeat(n * 700_000))),
}).map((r) => {
  const headers = r.headers.filter(([name]) => !["content-length", "host", "transfer-encoding", "connection", "expect", "upgrade", "te", "trailer", "keep-alive"].includes(name));
  if (r.contentType !== null) headers.push(["content-type", r.contentType]);
  const body = r.method === "GET" ? "" : r.body;
  const contentType = (r.contentType ?? "").toLowerCase();
  // Random JSON is never a valid structured event (it lacks id, source, type and specversion).
  const expected = r.method === "POST" && r.path === "/" && contentType.startsWith("application/cloudevents+json") && body.length <= 1024 * 1024 ? 400 : undefined;
  return { kind: "raw", method: r.method, path: r.path, headers, body, provisionable: false, expected };
});

export const anyRequest: fc.Arbitrary<FuzzRequest> = fc.oneof({ weight: 4, arbitrary: binaryRequest }, { weight: 4, arbitrary: structuredRequest }, { weight: 1, arbitrary: rawRequest });

/** Marks the requests that are well-formed pending events with schema-valid data: the only ones that may reach Kubernetes. */
function percentDecoded(value: string): string {
  if (!value.includes("%")) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

function classify(request: FuzzRequest, parts: {
  specversion: unknown;
  id: unknown;
  source: unknown;
  type: unknown;
  extensionNames: string[];
  contentType: string;
  body?: string;
  data?: unknown;
  wholeIsObject?: boolean;
}): FuzzRequest {
  if (request.expected) return request;
  if (request.kind === "binary" && parts.contentType.toLowerCase().startsWith("application/cloudevents")) return request;
  if (request.kind === "structured" && !parts.wholeIsObject) return request;
  const wellFormed = typeof parts.id === "string" && parts.id !== "" && typeof parts.source === "string" && parts.source !== "" &&
    (parts.specversion === "1.0" || parts.specversion === "0.3") && parts.extensionNames.every((name) => EXTENSION_NAME.test(name));
  if (!wellFormed || parts.type !== PENDING) return request;
  // As the service reads data: a string (binary mode, or a JSON string in structured mode) is parsed as JSON.
  let data: unknown = request.kind === "binary" ? parts.body : parts.data;
  if (typeof data === "string") {
    try {
      data = JSON.parse(data);
    } catch {
      return request;
    }
  }
  const record = data as { gateway_name?: unknown; message?: unknown } | null;
  if (typeof record !== "object" || record === null || Array.isArray(record)) return request;
  const gateway = record.gateway_name;
  if (typeof gateway !== "string" || gateway.length > 63 || !LABEL_VALUE.test(gateway)) return request;
  if (record.message !== undefined && (typeof record.message !== "string" || record.message.length > 1024)) return request;
  return { ...request, provisionable: true, source: parts.source as string, id: parts.id as string, gateway };
}

// ---------------------------------------------------------------- the oracle

/** Answers the service may give: README's status table. */
export const DOCUMENTED = new Set([200, 202, 400, 401, 403, 404, 413, 415, 429, 503]);
export const FAILURE_REASONS = new Set(["InvalidEventData", "GatewayNotRouted", "PodRejected", "NameConflict"]);

export interface Observed {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Whether the request reached Kubernetes (in-process runs know; over HTTP: unknown). */
  reachedKube?: boolean;
}

/**
 * What is wrong with an answer, or `undefined`. The promises: never a 5xx other than 503, never an undocumented
 * status, 4xx carry a JSON error, a 200 carries a result event, Kubernetes is reached only for provisionable
 * requests, malformed events are refused 400, and a done event is only ever for a provisionable request.
 */
export function violation(request: FuzzRequest, observed: Observed, options: { kubeReachable: boolean }): string | undefined {
  if (observed.status >= 500 && observed.status !== 503) return `server error ${observed.status}: ${observed.body.slice(0, 200)}`;
  const { status, headers, body } = observed;
  const route = request.method === "POST" && (request.path === "/" || request.path === "/?a=b");
  if (!DOCUMENTED.has(status) && !(status === 431 && request.kind !== "structured")) return `undocumented status ${status}: ${body.slice(0, 200)}`;
  if (status === 404 && route) return `404 for POST /: ${body.slice(0, 200)}`;
  if (!route) return undefined; // other endpoints: anything documented
  if (observed.reachedKube && !request.provisionable) return `reached Kubernetes for a request that is not a valid pending event (status ${status})`;
  if (request.expected && status !== request.expected && status !== 413 && status !== 431) {
    return `expected ${request.expected}, got ${status}: ${headers["ce-type"] ?? ""} ${body.slice(0, 200)}`;
  }
  if (request.provisionable && (status === 400 || status === 415)) return `a valid pending event refused ${status}: ${body.slice(0, 200)}`;
  if (status >= 400 && status !== 431) {
    try {
      const parsed = JSON.parse(body);
      if (typeof parsed?.error !== "string" || !parsed.error) return `${status} without an error message`;
    } catch {
      return `${status} with a body that is not JSON: ${body.slice(0, 100)}`;
    }
  }
  if (status === 200) {
    const type = headers["ce-type"];
    try {
      if (type) checkData(type, JSON.parse(body));
    } catch (error) {
      return (error as Error).message;
    }
    if (type === "io.podgateway.client.scheduling.failed") {
      let parsed: { reason?: string; message?: string } | undefined;
      try {
        parsed = JSON.parse(body);
      } catch {
        return "failed event whose data is not JSON";
      }
      if (!FAILURE_REASONS.has(parsed?.reason ?? "") || !parsed?.message) return `failed event without a documented reason: ${body.slice(0, 200)}`;
      if (request.provisionable && parsed?.reason === "InvalidEventData") return `valid data answered InvalidEventData: ${parsed.message}`;
    } else if (type === "io.podgateway.client.scheduling.done") {
      if (!request.provisionable) return "done for a request that is not a valid pending event";
      if (!options.kubeReachable) return "done without Kubernetes";
    } else {
      return `200 without a result event: ${body.slice(0, 100)}`;
    }
  }
  if (status === 503 && !request.provisionable) return "503 for a request that should not need Kubernetes";
  return undefined;
}

/** Raw HTTP/1.1 byte sequences no fetch would send: broken framing, injected headers, conflicting lengths, garbage. */
export const rawBytes: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 400 }).map((bytes) => Buffer.from(bytes)),
  fc.record({
    method: fc.constantFrom("POST", "GET", "post", "P OST", "", "\u0000", "CONNECT", "PRI"),
    target: fc.constantFrom("/", "*", "http://127.0.0.1/", "", "/\r\n", "/ /", "/%00", "/" + "a".repeat(9000)),
    version: fc.constantFrom("HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.1x", "", "HTTP/0.9"),
    headers: fc.array(fc.oneof(
      fc.constantFrom(
        "Content-Length: 5", "Content-Length: -1", "Content-Length: 99999999999", "Content-Length: 5, 6", "Content-Length: abc",
        "Transfer-Encoding: chunked", "Transfer-Encoding: gzip, chunked", "Transfer-Encoding: identity", "Content-Type: application/cloudevents+json",
        "ce-specversion: 1.0", "ce-id: raw", "ce-source: /raw", "ce-type: io.podgateway.client.pending", "Host: 127.0.0.1",
        " folded: value", "X-Bad\u0000Name: v", "X-Nl: a\rb", "no-colon-header", ": empty-name", "Expect: 100-continue", "Connection: upgrade", "Upgrade: h2c",
      ),
      fc.string({ unit: fc.integer({ min: 0, max: 255 }).map((code) => String.fromCharCode(code)), maxLength: 60 }),
    ), { maxLength: 8 }),
    body: fc.oneof(fc.constant(""), fc.constantFrom("hello", "0\r\n\r\n", "5\r\nhello\r\n0\r\n\r\n", "zz\r\nxx\r\n", '{"gateway_name":"foo"}'), fc.string({ maxLength: 100 })),
    lineEnd: fc.constantFrom("\r\n", "\n", "\r"),
  }).map((r) => Buffer.from(`${r.method} ${r.target} ${r.version}${r.lineEnd}${r.headers.map((h) => h + r.lineEnd).join("")}${r.lineEnd}${r.body}`, "latin1")),
);

/** Turns a generated request into a fetch `Request` (throws only for what fetch itself refuses to build). */
export function toRequest(base: string, request: FuzzRequest): Request {
  const headers = new Headers();
  for (const [name, value] of request.headers) headers.append(name, value);
  const init: RequestInit = { method: request.method, headers };
  if (request.method !== "GET" && request.method !== "HEAD" && request.body) init.body = request.body;
  return new Request(new URL(request.path, base), init);
}
