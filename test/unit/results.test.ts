import assert from "node:assert/strict";
import { test } from "node:test";
import { doneEvent, failedEvent, parseCeOverrides, replyWith } from "../../src/events/results.ts";

const stamp = { source: "/podgateway/provisioner", extensions: { cluster: "local" } };
const request = { id: "req-1", source: "/senders/a" };
const done = { pod_name: "p", namespace: "n", gateway_name: "foo", message: "m", served_from: "cold" as const };

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

test("every outcome is byte-identical however late it is built again: its time comes from the request or the pod", async () => {
  const { releaseResult, lifecycleEvent } = await import("../../src/lifecycle/events.ts");
  const pod = { metadata: { name: "p", uid: "u1", creationTimestamp: "2026-01-01T00:00:00Z", deletionTimestamp: "2026-01-01T00:09:00Z", annotations: {} } };
  const timed = { ...request, time: "2026-01-01T00:00:00.123Z" };
  const outcomes = [
    () => doneEvent(stamp, timed, done, "2026-01-01T00:00:01Z"),
    () => failedEvent(stamp, timed, { reason: "AdmissionFailed", message: "403" }, "p"),
    () => failedEvent(stamp, request, { reason: "InvalidEventData", message: "bad" }),
    () => releaseResult(stamp, timed, { type: "done", data: { pod_name: "p", namespace: "n", message: "gone" } }),
    () => releaseResult(stamp, request, { type: "failed", data: { reason: "NotAClient", message: "no", pod_name: "p" } }),
    () => lifecycleEvent(stamp, pod, "failed", { pod_name: "p", namespace: "n", reason: "ReadyTimeout", message: "late" }, "2026-01-01T00:05:00.000Z"),
    () => lifecycleEvent(stamp, pod, "deleted", { pod_name: "p", namespace: "n", message: "deleted" }),
  ];
  const wire = async (event: ReturnType<(typeof outcomes)[number]>) => {
    const response = replyWith(event);
    return JSON.stringify([[...response.headers].sort(), await response.text()]);
  };
  const first = await Promise.all(outcomes.map((build) => wire(build())));
  await new Promise((resolve) => setTimeout(resolve, 20));
  const again = await Promise.all(outcomes.map((build) => wire(build())));
  assert.deepEqual(again, first);
  assert.match(first[1]!, /"ce-time","2026-01-01T00:00:00.123Z"/, "a failure carries the request's time");
  assert.doesNotMatch(first[2]!, /ce-time/, "no time at all rather than now, when the request has none");
  assert.match(first[5]!, /"ce-time","2026-01-01T00:05:00.000Z"/);
  // Any date the sender wrote goes out as RFC 3339, as the spec wants of `time`.
  const loose = await wire(failedEvent(stamp, { ...request, time: "Thu, 01 Jan 2026 00:00:00 GMT" }, { reason: "InvalidEventData", message: "bad" }));
  assert.match(loose, /"ce-time","2026-01-01T00:00:00.000Z"/);
});
