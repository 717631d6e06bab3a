/** Client states and due transitions as pure functions of a pod; lifecycle event ids. */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Pod, PodStatus } from "kubernetes-types/core/v1";
import { clientStatus, dueTransitions, isReady, recordedTransitions, recordValue, type Transition } from "../../src/lifecycle/client-state.ts";
import { lifecycleEvent, releaseResult } from "../../src/lifecycle/events.ts";

const rules = { sidecarContainer: "gateway-sidecar", readyTimeoutMs: 60_000 };
const created = "2026-01-01T00:00:00Z";
const t0 = Date.parse(created);

const running = (sidecarRunning = true, ready = true): PodStatus => ({
  phase: "Running",
  conditions: [{ type: "Ready", status: ready ? "True" : "False", lastTransitionTime: "2026-01-01T00:00:05Z" }],
  containerStatuses: [
    { name: "client", ready, restartCount: 0, image: "i", imageID: "", state: { running: {} } },
    { name: "gateway-sidecar", ready, restartCount: 0, image: "i", imageID: "", state: sidecarRunning ? { running: {} } : { waiting: { reason: "CrashLoopBackOff" } } },
  ],
});

const pod = (status: PodStatus, extra: Partial<NonNullable<Pod["metadata"]>> = {}): Pod => ({
  metadata: {
    name: "pgw-client-1",
    namespace: "ns",
    uid: "uid-1",
    creationTimestamp: created,
    annotations: { "podgateway.io/request-source": "/src", "podgateway.io/request-id": "req-1" },
    ...extra,
  },
  spec: { containers: [] },
  status,
});

const due = (p: Pod, emitted: Transition[] = [], now = t0 + 1000, gone = false) => dueTransitions(p, gone, new Set(emitted), rules, now);

test("ready needs Running, the Ready condition and a running gateway sidecar", () => {
  assert.equal(isReady(pod(running()), rules), true);
  assert.equal(isReady(pod(running(false)), rules), false);
  assert.equal(isReady(pod(running(true, false)), rules), false);
  assert.equal(isReady(pod({ phase: "Pending" }), rules), false);
});

test("each transition is due once, in order, and never ready after failed or while deleting", () => {
  assert.deepEqual(due(pod({ phase: "Pending" })), []);
  assert.deepEqual(due(pod(running())), ["ready"]);
  assert.deepEqual(due(pod(running()), ["ready"]), []);
  const evicted = pod({ phase: "Failed", reason: "Evicted", message: "node pressure" });
  assert.deepEqual(due(evicted), ["failed"]);
  assert.deepEqual(due(evicted, ["ready"]), ["failed"]);
  assert.deepEqual(due(evicted, ["failed"]), []);
  const deleting = pod(running(), { deletionTimestamp: "2026-01-01T00:01:00Z" });
  assert.deepEqual(due(deleting), ["deleted"]);
  assert.deepEqual(due(deleting, ["ready", "deleted"]), []);
  assert.deepEqual(due(pod({ phase: "Failed", reason: "DeadlineExceeded" }), [], t0, true), ["failed", "deleted"]);
});

test("a pod not ready within the timeout has failed with ReadyTimeout; one that was ready has not", () => {
  assert.deepEqual(due(pod({ phase: "Pending" }), [], t0 + 59_000), []);
  assert.deepEqual(due(pod({ phase: "Pending" }), [], t0 + 60_000), ["failed"]);
  assert.deepEqual(due(pod(running(false)), ["ready"], t0 + 600_000), []);
  assert.deepEqual(dueTransitions(pod({ phase: "Pending" }), false, new Set(), { ...rules, readyTimeoutMs: 0 }, t0 + 1e9), []);
  const status = clientStatus(pod({ phase: "Pending" }), rules, t0 + 61_000, "foo");
  assert.equal(status.state, "failed");
  assert.equal(status.reason, "ReadyTimeout");
});

test("the record annotation round-trips and ignores unknown words", () => {
  assert.equal(recordValue(["deleted", "ready"]), "ready,deleted");
  const recorded = pod(running(), { annotations: { "podgateway.io/lifecycle-emitted": "ready, bogus,failed" } });
  assert.deepEqual([...recordedTransitions(recorded)].sort(), ["failed", "ready"]);
});

test("client status: pending, ready, failed, deleted, with the request it stands for", () => {
  assert.equal(clientStatus(pod({ phase: "Pending" }), rules, t0, "foo").state, "pending");
  const ready = clientStatus(pod(running()), rules, t0, "foo");
  assert.equal(ready.state, "ready");
  assert.deepEqual(ready.request, { source: "/src", id: "req-1" });
  assert.equal(ready.gateway_name, "foo");
  assert.equal(ready.ready_at, "2026-01-01T00:00:05Z");
  assert.equal(clientStatus(pod({ phase: "Failed", reason: "Evicted" }), rules, t0, "foo").reason, "Evicted");
  assert.equal(clientStatus(pod(running(), { deletionTimestamp: created }), rules, t0, "foo").state, "deleted");
  const gated = pod(running());
  gated.spec!.schedulingGates = [{ name: "podgateway.io/routing-verified" }];
  assert.equal(clientStatus(gated, rules, t0, "foo").state, "pending");
});

test("lifecycle event ids derive from pod uid and transition; causation comes from the pod's annotations", () => {
  const stamp = { source: "/provisioner", extensions: { ext: "x" } };
  const data = { pod_name: "pgw-client-1", namespace: "ns", message: "m" };
  const ready = lifecycleEvent(stamp, pod(running()), "ready", data);
  assert.equal(ready.type, "io.podgateway.client.ready");
  assert.equal(ready.causationid, "req-1");
  assert.equal(ready.causationsource, "/src");
  assert.equal(ready.subject, "pgw-client-1");
  assert.equal(ready.time, "2026-01-01T00:00:05.000Z"); // the Ready condition's time, as RFC 3339 with milliseconds
  assert.equal((ready as unknown as Record<string, unknown>).ext, "x");
  assert.equal(lifecycleEvent(stamp, pod(running()), "ready", data).id, ready.id);
  assert.notEqual(lifecycleEvent(stamp, pod(running()), "failed", data).id, ready.id);
  assert.notEqual(lifecycleEvent(stamp, pod(running(), { uid: "uid-2" }), "ready", data).id, ready.id);
  assert.equal(lifecycleEvent(stamp, pod(running()), "deleted", data).type, "io.podgateway.client.deleted");

  const request = { id: "r1", source: "/s" };
  const done = releaseResult(stamp, request, { type: "done", data: { pod_name: "p", namespace: "ns", message: "m" } });
  assert.equal(done.type, "io.podgateway.client.release.done");
  assert.equal(done.causationid, "r1");
  assert.equal(releaseResult(stamp, request, { type: "done", data: { pod_name: "p", namespace: "ns", message: "m" } }).id, done.id);
});
