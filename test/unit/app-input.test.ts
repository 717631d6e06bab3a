/**
 * The HTTP boundary: requests that must never reach Kubernetes. The kube client here fails the test if it is
 * called at all; everything that does reach Kubernetes is tested against the real cluster in test/e2e.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { CloudEvent, HTTP } from "cloudevents";
import type { RestClient } from "../../src/kube/rest-client.ts";
import { testApp } from "../support/app.ts";

const untouchable: RestClient = {
  performRequest: () => {
    throw new Error("Kubernetes must not be called for this request");
  },
};
const app = testApp(untouchable, { maxInFlight: 10 });
const send = (event: CloudEvent<unknown>) => {
  const message = HTTP.binary(event);
  return app.fetch(new Request("http://x/", { method: "POST", headers: message.headers as Record<string, string>, body: message.body as string }));
};

test("invalid data is answered 200 with a failed event naming the field and the rule", async () => {
  const response = await send(new CloudEvent({ id: "1", source: "/s", type: "io.podgateway.client.pending", data: { gateway_name: "no spaces" } }));
  assert.equal(response.status, 200);
  const reply = HTTP.toEvent({ headers: Object.fromEntries(response.headers), body: await response.text() }) as CloudEvent<Record<string, string>>;
  assert.equal(reply.type, "io.podgateway.client.scheduling.failed");
  assert.equal(reply.data?.reason, "InvalidEventData");
  assert.match(reply.data?.message ?? "", /data\.gateway_name must be a Kubernetes label value/);
  assert.equal(reply.causationid, "1");
});

test("other event types are acknowledged with 202 and counted", async () => {
  const response = await send(new CloudEvent({ id: "2", source: "/s", type: "com.example.other", data: {} }));
  assert.equal(response.status, 202);
  assert.equal(await response.text(), "");
  const metrics = await (await app.fetch(new Request("http://x/metrics"))).text();
  assert.match(metrics, /podgateway_events_total\{type="other",outcome="ignored"\} 1/);
  assert.match(metrics, /podgateway_events_total\{type="io.podgateway.client.pending",outcome="failed"\} 1/);
});

test("oversized, batched and non-CloudEvent requests get the documented 4xx", async () => {
  const big = await app.fetch(new Request("http://x/", {
    method: "POST",
    headers: { "content-type": "application/cloudevents+json" },
    body: "x".repeat(1024 * 1024 + 1),
  }));
  assert.equal(big.status, 413);
  const batch = await app.fetch(new Request("http://x/", { method: "POST", headers: { "content-type": "application/cloudevents-batch+json" }, body: "[]" }));
  assert.equal(batch.status, 415);
  assert.match((await batch.json()).error, /batched mode/);
  const plain = await app.fetch(new Request("http://x/", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" }));
  assert.equal(plain.status, 400);
});

test("health and readiness endpoints answer", async () => {
  assert.equal((await app.fetch(new Request("http://x/healthz"))).status, 200);
  assert.equal((await app.fetch(new Request("http://x/readyz"))).status, 200);
});

test("--gateways: another gateway fails UnknownGateway without any Kubernetes call", async () => {
  const options = { kube: untouchable, routingInitContainer: "gateway-init", gateways: ["foo"], pod: { namespace: "n", gatewayLabelKey: "setGateway", gatewayAnnotationKey: "setGateway" } };
  const gated = testApp(untouchable, { provisioner: options });
  const message = HTTP.binary(new CloudEvent({ id: "g1", source: "/s", type: "io.podgateway.client.pending", data: { gateway_name: "bar" } }));
  const response = await gated.fetch(new Request("http://x/", { method: "POST", headers: message.headers as Record<string, string>, body: message.body as string }));
  const reply = HTTP.toEvent({ headers: Object.fromEntries(response.headers), body: await response.text() }) as CloudEvent<Record<string, string>>;
  assert.equal(reply.type, "io.podgateway.client.scheduling.failed");
  assert.equal(reply.data?.reason, "UnknownGateway");
  assert.match(reply.data?.message ?? "", /gateway bar is not one of the gateways served here \(--gateways foo\)/);
});
