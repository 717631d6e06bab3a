/**
 * Which deletes are forced: only a pod that never ran (behind the routing gate, or never placed on a node) is
 * deleted with `gracePeriodSeconds: 0`; a client that may run — released, or failed by ReadyTimeout — gets its
 * own `terminationGracePeriodSeconds` (SIGTERM first), so its teardown runs.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { KubeRequest } from "../../src/kube/rest-client.ts";
import { neverRan } from "../../src/lifecycle/client-state.ts";
import { LifecycleTracker } from "../../src/lifecycle/tracker.ts";
import { ROUTING_GATE } from "../../src/provision/client-pod.ts";
import { FakeKube, testLifecycle } from "./lifecycle-fake-kube.ts";

/** The DeleteOptions of every pod DELETE, by pod name. */
class DeleteRecordingKube extends FakeKube {
  readonly deletes = new Map<string, Record<string, unknown>>();
  override performRequest<T>(request: KubeRequest): Promise<T> {
    if (request.method === "DELETE" && request.path.includes("/pods/")) {
      this.deletes.set(request.path.split("/").pop()!, request.body as Record<string, unknown>);
    }
    return super.performRequest<T>(request);
  }
  scheduled(name: string): void {
    this.pods.get(name)!.spec!.nodeName = "node-1";
  }
}

test("neverRan: gated, or admitted but never placed on a node; not once scheduled", () => {
  assert.equal(neverRan({ spec: { schedulingGates: [{ name: ROUTING_GATE }] } }), true);
  assert.equal(neverRan({ spec: { schedulingGates: [{ name: ROUTING_GATE }], nodeName: "n" } }), true);
  assert.equal(neverRan({ spec: {} }), true);
  assert.equal(neverRan({ spec: { nodeName: "n" } }), false);
  assert.equal(neverRan({ spec: { nodeName: "n", schedulingGates: [{ name: "someone-elses" }] } }), false);
});

const releaseEvent = (id: string) => ({ specversion: "1.0" as const, id, source: "/sender", type: "io.podgateway.client.release" });

test("a release deletes a scheduled client with its own grace period, a gated one at once", async () => {
  const kube = new DeleteRecordingKube();
  kube.addPod("running", { status: { phase: "Running" } });
  kube.scheduled("running");
  kube.addPod("gated", { gated: true });
  const { release } = testLifecycle(kube);
  assert.equal((await release(releaseEvent("r1"), { pod_name: "running" })).type, "io.podgateway.client.release.done");
  assert.equal((await release(releaseEvent("r2"), { pod_name: "gated" })).type, "io.podgateway.client.release.done");
  assert.equal(kube.deletes.get("running")?.gracePeriodSeconds, undefined, "no gracePeriodSeconds: the pod's own applies");
  assert.ok((kube.deletes.get("running")?.preconditions as { uid?: string } | undefined)?.uid, "still pinned to the uid");
  assert.equal(kube.deletes.get("gated")?.gracePeriodSeconds, 0);
});

test("ReadyTimeout deletes a scheduled client with its own grace period, an unscheduled one at once", async () => {
  const kube = new DeleteRecordingKube();
  const createdAt = new Date(Date.now() - 10_000).toISOString();
  kube.addPod("slow", { createdAt, status: { phase: "Pending" } });
  kube.scheduled("slow");
  kube.addPod("unplaced", { createdAt, status: { phase: "Pending" } });
  const sent: string[] = [];
  const tracker = new LifecycleTracker({
    kube, namespace: "ns", labelSelector: "app.kubernetes.io/managed-by=podgateway-provisioner",
    sink: { send: async (event) => void sent.push(`${event.subject} ${event.type}`) },
    stamp: { source: "/provisioner", extensions: {} }, log: () => {}, sidecarContainer: "gateway-sidecar",
    readyTimeoutMs: 5_000, gatewayLabelKey: "setGateway", gatewayAnnotationKey: "setGateway", resyncMs: 20,
  });
  const abort = new AbortController();
  const done = tracker.run(abort.signal);
  const deadline = Date.now() + 3_000;
  while (kube.deletes.size < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  abort.abort();
  await done;
  await tracker.idle();
  assert.ok(sent.includes("slow io.podgateway.client.failed"));
  assert.equal(kube.deletes.get("slow")?.gracePeriodSeconds, undefined, "no gracePeriodSeconds: the pod's own applies");
  assert.equal(kube.deletes.get("unplaced")?.gracePeriodSeconds, 0);
});
