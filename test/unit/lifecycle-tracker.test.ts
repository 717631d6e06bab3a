/**
 * The lifecycle tracker against the in-memory API server: each transition delivered once, recorded on the
 * pod, nothing repeated or missed across restarts, deliveries retried, deletions held by the finalizer.
 */
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import type { CloudEventV1 } from "cloudevents";
import type { PodStatus } from "kubernetes-types/core/v1";
import type { EventSink } from "../../src/events/sink.ts";
import type { KubeRequest } from "../../src/kube/rest-client.ts";
import { essentials, LifecycleTracker, type TrackerOptions } from "../../src/lifecycle/tracker.ts";
import { FakeKube } from "./lifecycle-fake-kube.ts";

type Sent = CloudEventV1<Record<string, string>>;

class RecordingSink implements EventSink {
  events: Sent[] = [];
  /** Deliveries still to refuse. */
  refuse = 0;
  send(event: CloudEventV1<unknown>): Promise<void> {
    if (this.refuse > 0) {
      this.refuse--;
      return Promise.reject(new Error("K_SINK answered 503"));
    }
    this.events.push(event as Sent);
    return Promise.resolve();
  }
  types(pod?: string): string[] {
    return this.events.filter((event) => !pod || event.subject === pod).map((event) => event.type.replace("io.podgateway.client.", ""));
  }
}

const READY: PodStatus = {
  phase: "Running",
  conditions: [{ type: "Ready", status: "True", lastTransitionTime: "2026-01-01T00:00:05Z" }],
  containerStatuses: [
    { name: "client", ready: true, restartCount: 0, image: "i", imageID: "", state: { running: {} } },
    { name: "gateway-sidecar", ready: true, restartCount: 0, image: "i", imageID: "", state: { running: {} } },
  ],
};

const running: { stop: () => Promise<void> }[] = [];
afterEach(async () => {
  for (const tracker of running.splice(0)) await tracker.stop();
});

function startTracker(kube: FakeKube, sink: RecordingSink, options: Partial<TrackerOptions> = {}) {
  const tracker = new LifecycleTracker({
    kube,
    namespace: "ns",
    labelSelector: "app.kubernetes.io/managed-by=podgateway-provisioner",
    sink,
    stamp: { source: "/provisioner", extensions: {} },
    log: () => {},
    sidecarContainer: "gateway-sidecar",
    readyTimeoutMs: 0,
    gatewayLabelKey: "setGateway",
    gatewayAnnotationKey: "setGateway",
    resyncMs: 20,
    ...options,
  });
  const abort = new AbortController();
  const done = tracker.run(abort.signal);
  const handle = {
    tracker,
    stop: async () => {
      abort.abort();
      await done;
      await tracker.idle();
    },
  };
  running.push(handle);
  return handle;
}

async function until(what: string, check: () => boolean, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
const settle = () => new Promise((resolve) => setTimeout(resolve, 100));

test("ready is delivered once, correlated to the request, recorded on the pod, and the finalizer is added", async () => {
  const kube = new FakeKube();
  const sink = new RecordingSink();
  kube.addPod("p1");
  startTracker(kube, sink);
  await until("the finalizer", () => kube.pods.get("p1")?.metadata?.finalizers?.includes("podgateway.io/lifecycle") ?? false);
  assert.deepEqual(sink.types(), []);
  kube.setStatus("p1", READY);
  await until("ready", () => sink.events.length === 1);
  await settle();
  const [ready] = sink.events;
  assert.equal(ready!.type, "io.podgateway.client.ready");
  assert.equal(ready!.subject, "p1");
  assert.equal(ready!.causationid, "req-p1");
  assert.equal(ready!.causationsource, "/src");
  assert.equal(ready!.data?.gateway_name, "foo");
  assert.equal(kube.pods.get("p1")?.metadata?.annotations?.["podgateway.io/lifecycle-emitted"], "ready");
  assert.deepEqual(sink.types(), ["ready"], "not again on later changes and sweeps");
});

test("pods still behind the routing gate are requests in progress: no events, no finalizer", async () => {
  const kube = new FakeKube();
  const sink = new RecordingSink();
  kube.addPod("gated", { gated: true, status: READY });
  startTracker(kube, sink);
  await settle();
  assert.deepEqual(sink.types(), []);
  assert.equal(kube.pods.get("gated")?.metadata?.finalizers, undefined);
  await kube.performRequest({ method: "DELETE", path: "/api/v1/namespaces/ns/pods/gated" });
  await settle();
  assert.deepEqual(sink.types(), []);
});

test("a failed pod yields failed (its reason), deletion yields deleted, and the finalizer lets it go afterwards", async () => {
  const kube = new FakeKube();
  const sink = new RecordingSink();
  kube.addPod("p1", { status: READY });
  startTracker(kube, sink);
  await until("ready", () => sink.events.length === 1);
  kube.setStatus("p1", { phase: "Failed", reason: "Evicted", message: "The node was low on resource: memory." });
  await until("failed", () => sink.events.length === 2);
  assert.equal(sink.events[1]!.data?.reason, "Evicted");
  assert.match(sink.events[1]!.data?.message ?? "", /low on resource/);
  await until("recorded", () => kube.pods.get("p1")?.metadata?.annotations?.["podgateway.io/lifecycle-emitted"] === "ready,failed");

  await kube.performRequest({ method: "DELETE", path: "/api/v1/namespaces/ns/pods/p1" });
  await until("deleted", () => sink.events.length === 3);
  await until("the pod to go", () => !kube.pods.has("p1"));
  await settle();
  assert.deepEqual(sink.types(), ["ready", "failed", "deleted"]);
  assert.equal(new Set(sink.events.map((event) => event.id)).size, 3);
});

test("a restart in between emits nothing twice and misses nothing, even a deletion while down", async () => {
  const kube = new FakeKube();
  const sink = new RecordingSink();
  kube.addPod("a", { status: READY });
  kube.addPod("b");
  kube.addPod("c", { status: READY });
  const first = startTracker(kube, sink);
  await until("a and c ready", () => sink.events.length === 2);
  await until("finalizers", () => ["a", "b", "c"].every((name) => kube.pods.get(name)?.metadata?.finalizers?.length));
  await settle();
  await first.stop();

  // While the service is down: b becomes ready, c is deleted (the finalizer holds it), a fails.
  kube.setStatus("b", READY);
  await kube.performRequest({ method: "DELETE", path: "/api/v1/namespaces/ns/pods/c" });
  kube.setStatus("a", { phase: "Failed", reason: "DeadlineExceeded", message: "Pod was active on the node longer than the specified deadline" });
  assert.ok(kube.pods.has("c"), "held by the finalizer");

  startTracker(kube, sink);
  await until("three more", () => sink.events.length === 5);
  await settle();
  assert.deepEqual(sink.types("a"), ["ready", "failed"]);
  assert.deepEqual(sink.types("b"), ["ready"]);
  assert.deepEqual(sink.types("c"), ["ready", "deleted"]);
  assert.equal(sink.events.find((event) => event.subject === "a" && event.type.endsWith(".failed"))?.data?.reason, "DeadlineExceeded");
  assert.ok(!kube.pods.has("c"));
});

test("a refused delivery is retried with the same id, and only then recorded", async () => {
  const kube = new FakeKube();
  const sink = new RecordingSink();
  sink.refuse = 3;
  kube.addPod("p1", { status: READY });
  startTracker(kube, sink);
  await until("delivered", () => sink.events.length === 1);
  await settle();
  assert.deepEqual(sink.types(), ["ready"]);
  assert.equal(kube.pods.get("p1")?.metadata?.annotations?.["podgateway.io/lifecycle-emitted"], "ready");
});

test("a pod not ready in time fails with ReadyTimeout and is deleted; deleted follows", async () => {
  const kube = new FakeKube();
  const sink = new RecordingSink();
  kube.addPod("slow", { createdAt: new Date(Date.now() - 10_000).toISOString() });
  startTracker(kube, sink, { readyTimeoutMs: 5_000 });
  await until("failed and deleted", () => sink.events.length === 2);
  assert.deepEqual(sink.types(), ["failed", "deleted"]);
  assert.equal(sink.events[0]!.data?.reason, "ReadyTimeout");
  await until("gone", () => !kube.pods.has("slow"));
});

test("a pod force-removed without our finalizer still yields deleted, and the status endpoint remembers it", async () => {
  const kube = new FakeKube();
  const sink = new RecordingSink();
  const handle = startTracker(kube, sink);
  await settle();
  kube.addPod("quick", { status: READY });
  await until("ready", () => sink.events.length === 1);
  const pod = kube.pods.get("quick")!;
  pod.metadata!.finalizers = [];
  await kube.performRequest({ method: "DELETE", path: "/api/v1/namespaces/ns/pods/quick" });
  await until("deleted", () => sink.events.length === 2);
});

test("what the tracker keeps of a pod includes what its events read: request, record, gateway and trace annotations", () => {
  const annotations = {
    "podgateway.io/request-id": "r1",
    "podgateway.io/request-source": "/s",
    "podgateway.io/traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "podgateway.io/tracestate": "vendor=abc",
    setGateway: "foo",
    "kubectl.kubernetes.io/last-applied-configuration": "{ big }",
  };
  const kept = essentials({ metadata: { name: "p", annotations }, spec: { containers: [] } }, { gatewayLabelKey: "setGateway", gatewayAnnotationKey: "setGateway" });
  const { "kubectl.kubernetes.io/last-applied-configuration": _dropped, ...wanted } = annotations;
  assert.deepEqual(kept.metadata?.annotations, wanted);
});

test("a run's signal reaches every API call and K_SINK delivery: once it aborts, a delivery under way stops and nothing more is called", async () => {
  /** Every request's signal, as the API server saw it. */
  const signals: (AbortSignal | undefined)[] = [];
  class SignalKube extends FakeKube {
    override performRequest<T>(request: KubeRequest): Promise<T> {
      signals.push(request.signal);
      return super.performRequest<T>(request);
    }
    override performStream<T>(request: KubeRequest & { method: "GET" }): Promise<ReadableStream<T>> {
      signals.push(request.signal);
      return super.performStream<T>(request);
    }
  }
  const kube = new SignalKube();
  // A K_SINK that never answers: the delivery retries until its signal stops it (or 2 s, for the test's sake).
  const sends: { signal?: AbortSignal; ended?: string }[] = [];
  const sink: EventSink = {
    send: (_event, signal) => {
      const send: { signal?: AbortSignal; ended?: string } = { signal };
      sends.push(send);
      return new Promise((_resolve, reject) => {
        const timer = setTimeout(() => {
          send.ended = "timeout";
          reject(new Error("K_SINK timed out"));
        }, 2_000);
        signal?.addEventListener("abort", () => {
          clearTimeout(timer);
          send.ended = "aborted";
          reject(signal.reason);
        }, { once: true });
      });
    },
  };
  kube.addPod("p1", { status: READY });
  const abort = new AbortController();
  const tracker = new LifecycleTracker({
    kube, namespace: "ns", labelSelector: "app.kubernetes.io/managed-by=podgateway-provisioner", sink,
    stamp: { source: "/provisioner", extensions: {} }, log: () => {}, sidecarContainer: "gateway-sidecar",
    readyTimeoutMs: 0, gatewayLabelKey: "setGateway", gatewayAnnotationKey: "setGateway", resyncMs: 20,
  });
  const done = tracker.run(abort.signal);
  await until("a delivery under way", () => sends.length === 1);
  assert.ok(kube.calls.some((call) => call.startsWith("PATCH")), "the finalizer was added before the delivery");
  const callsAtAbort = signals.length;
  abort.abort();
  await done;
  await tracker.idle(3_000);
  await settle();
  assert.equal(sends[0]!.ended, "aborted", "the delivery under way was stopped by the signal");
  assert.equal(signals.length, callsAtAbort, "no API call started after the abort");
  assert.equal(sends.length, 1, "no delivery after the abort");
  assert.ok(signals.length > 0 && signals.every((signal) => signal?.aborted), "every API call carried the run's signal");
});

test("what the tracker keeps of a pod is copied, never invented: no placeholder image, imageID or restartCount", () => {
  const kept = essentials({
    metadata: { name: "p", uid: "u" },
    spec: { containers: [{ name: "client", image: "alpine" }], nodeName: "node-1", schedulingGates: [{ name: "g" }] },
    status: {
      phase: "Running",
      containerStatuses: [{ name: "client", ready: true, image: "alpine", imageID: "sha256:x", restartCount: 3, state: { running: { startedAt: "2026-01-01T00:00:00Z" } } }],
    },
  }, { gatewayLabelKey: "setGateway", gatewayAnnotationKey: "setGateway" });
  assert.deepEqual(kept.spec, { nodeName: "node-1", schedulingGates: [{ name: "g" }] });
  assert.deepEqual(kept.status?.containerStatuses, [{ name: "client", ready: true, state: { running: {} } }]);
});
