import assert from "node:assert/strict";
import { test } from "node:test";
import { doneEvent, failedEvent, parseCeOverrides } from "../../src/events/results.ts";

const stamp = { source: "/podgateway/provisioner", extensions: { cluster: "local" } };
const request = { id: "req-1", source: "/senders/a" };
const done = { pod_name: "p", namespace: "n", gateway_name: "foo", message: "m" };

test("results are correlated to the request and identical for every delivery of it", () => {
  const first = doneEvent(stamp, request, done, "2026-01-01T00:00:00Z");
  const again = doneEvent(stamp, request, done, "2026-01-01T00:00:00Z");
  assert.equal(first.type, "io.podgateway.client.scheduling.done");
  assert.notEqual(first.id, request.id);
  assert.equal(first.id, again.id);
  assert.equal(first.subject, "p");
  assert.equal(first.source, stamp.source);
  assert.equal(first.causationid, "req-1");
  assert.equal(first.causationsource, "/senders/a");
  assert.equal(first.cluster, "local");
  assert.deepEqual(first.data, done);
  assert.notEqual(first.id, doneEvent(stamp, { ...request, id: "req-2" }, done).id);
});

test("failed events carry a reason and a different id than done", () => {
  const failed = failedEvent(stamp, request, { reason: "GatewayNotRouted", message: "no", gateway_name: "baz" });
  assert.equal(failed.type, "io.podgateway.client.scheduling.failed");
  assert.notEqual(failed.id, doneEvent(stamp, request, done).id);
  assert.equal((failed.data as { reason: string }).reason, "GatewayNotRouted");
});

test("K_CE_OVERRIDES is parsed and checked", () => {
  assert.deepEqual(parseCeOverrides(undefined), {});
  assert.deepEqual(parseCeOverrides('{"extensions":{"team":"net","n":1}}'), { team: "net", n: "1" });
  assert.throws(() => parseCeOverrides("{"), /not valid JSON/);
  assert.throws(() => parseCeOverrides('{"extensions":{"Bad-Name":"x"}}'), /lowercase/);
});
