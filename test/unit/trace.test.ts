/** Trace context: which values are carried, from where, and onto what. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { CloudEvent, HTTP } from "cloudevents";
import { traceAnnotations, traceContext, traceHeaders, traceOf, traceOfPod, withTrace } from "../../src/events/trace.ts";
import type { RestClient } from "../../src/kube/rest-client.ts";
import { testApp } from "../support/app.ts";

const PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const OTHER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

test("only a valid traceparent is carried, with its tracestate", () => {
  assert.deepEqual(traceContext(PARENT, "congo=t61rcWkgMzE"), { traceparent: PARENT, tracestate: "congo=t61rcWkgMzE" });
  assert.deepEqual(traceContext(PARENT), { traceparent: PARENT });
  for (const bad of ["", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", PARENT.toUpperCase(), "ff" + PARENT.slice(2),
    "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", PARENT + "-x"]) {
    assert.equal(traceContext(bad, "a=b"), undefined, bad);
  }
  // A later version may append fields.
  assert.deepEqual(traceContext("01" + PARENT.slice(2) + "-more"), { traceparent: "01" + PARENT.slice(2) + "-more" });
  assert.deepEqual(traceContext(PARENT, "a=\u0001"), { traceparent: PARENT });
});

test("the event's extension wins over the HTTP header; the header serves when the event has none", () => {
  const event = new CloudEvent({ id: "1", source: "/s", type: "t", traceparent: PARENT, tracestate: "a=b" });
  assert.deepEqual(traceOf(event, new Headers({ traceparent: OTHER })), { traceparent: PARENT, tracestate: "a=b" });
  const plain = new CloudEvent({ id: "1", source: "/s", type: "t" });
  assert.deepEqual(traceOf(plain, new Headers({ traceparent: OTHER, tracestate: "x=y" })), { traceparent: OTHER, tracestate: "x=y" });
  assert.equal(traceOf(plain, new Headers()), undefined);
});

test("withTrace adds the extensions to a result; no context leaves the event as it was", () => {
  const event = new CloudEvent({ id: "1", source: "/s", type: "t", data: { a: 1 } });
  assert.equal(withTrace(event, undefined), event);
  const traced = withTrace(event, { traceparent: PARENT });
  assert.equal(traced.traceparent, PARENT);
  assert.equal(traced.tracestate, undefined);
  assert.deepEqual(traced.data, { a: 1 });
  assert.equal(traced.id, "1");
  assert.equal(traceOfPod({ metadata: { annotations: { "podgateway.io/traceparent": PARENT } } })?.traceparent, PARENT);
  assert.equal(traceOfPod({ metadata: {} }), undefined);
  assert.deepEqual(traceHeaders(withTrace(event, { traceparent: PARENT, tracestate: "a=b" })), { traceparent: PARENT, tracestate: "a=b" });
  assert.deepEqual(traceHeaders(event), {});
  assert.deepEqual(traceAnnotations({ traceparent: PARENT }), { "podgateway.io/traceparent": PARENT });
});

test("a failed answer carries the request's trace context (HTTP header), and the log line has it", async () => {
  const lines: Record<string, unknown>[] = [];
  const untouchable: RestClient = { performRequest: () => Promise.reject(new Error("no Kubernetes in this test")) };
  const app = testApp(untouchable, { log: (record) => lines.push(record) });
  const message = HTTP.binary(new CloudEvent({ id: "t1", source: "/s", type: "io.podgateway.client.pending", data: { gateway_name: "-" } }));
  const response = await app.fetch(new Request("http://x/", {
    method: "POST",
    headers: { ...(message.headers as Record<string, string>), traceparent: PARENT, tracestate: "a=b" },
    body: message.body as string,
  }));
  assert.equal(response.headers.get("ce-traceparent"), PARENT);
  assert.equal(response.headers.get("ce-tracestate"), "a=b");
  assert.equal(lines.find((line) => line.msg === "event")?.traceparent, PARENT);
});
