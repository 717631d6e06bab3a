/**
 * deploy/service.yaml on the local cluster's real Knative Serving (cluster/serving.sh: Serving's controller,
 * webhook, activator and autoscaler, Kourier with Envoy, all pods on the real node): the provisioner's Knative
 * Service scales to zero when idle and comes back through the activator for the next event, and nothing is lost or
 * made twice — a burst at zero above the pods' containerConcurrency, a revision pod taken down while events are in
 * flight. The idle window is shortened through config-autoscaler (restored after).
 *
 * Client pods here go to kwok's nodes (deploy/'s own template): what is tested is Serving's path to the provisioner;
 * real, routed clients are real-node.test.ts's and in-cluster.test.ts's.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { adminClient, listPods, makeRoomForPods } from "../support/cluster.ts";
import { CLIENT_NS, kubectl, PROVISIONER, SERVICE_NS } from "../support/knative.ts";
import { donePods, revisionPods, sendPending, type ServingFlow, startServingFlow, waitForZero } from "../support/serving.ts";

const SOURCE = "/e2e/serving";

/**
 * How many events the revision's pods answered 429 themselves (their /metrics, port 8080 on each pod's address). Ready
 * pods only: one the autoscaler has just added may have no address yet, and has answered nothing.
 */
async function busyAnswers(): Promise<number> {
  let busy = 0;
  const pods = (await revisionPods()).filter((p) => p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"));
  assert.ok(pods.length > 0, "a Ready revision pod to ask");
  for (const pod of pods) {
    const text = await (await fetch(`http://${pod.status!.podIP}:8080/metrics`)).text();
    for (const m of text.matchAll(/^podgateway_events_total\{type="unread",outcome="busy"\} (\d+)$/gm)) busy += Number(m[1]);
  }
  return busy;
}

/** One pod per event, none shared, each one there. */
async function assertOnePodEach(pods: string[]): Promise<void> {
  assert.equal(new Set(pods).size, pods.length, "one client pod per event, none shared");
  const existing = new Set((await listPods(CLIENT_NS)).map((p) => p.metadata!.name!));
  assert.deepEqual(pods.filter((p) => !existing.has(p)), [], "every answered pod exists");
}

describe("the provisioner on real Knative Serving: scale to zero and back, nothing lost", { timeout: 900_000 }, () => {
  let flow: ServingFlow;
  const run = Date.now().toString(36);

  before(async () => {
    flow = await startServingFlow({ kwokClients: true, shortIdle: true, history: 3000 });
    await makeRoomForPods(await adminClient(), 400);
  });
  after(() => flow?.stop());

  test("the Knative Service is Ready on a revision of our image, reached through Kourier", () => {
    const ksvc = JSON.parse(kubectl("get", "services.serving.knative.dev", PROVISIONER, "-n", SERVICE_NS, "-o", "json"));
    assert.equal(ksvc.status.address.url, `http://${PROVISIONER}.${SERVICE_NS}.svc.cluster.local`);
    const revision = JSON.parse(kubectl("get", "revisions.serving.knative.dev", ksvc.status.latestReadyRevisionName, "-n", SERVICE_NS, "-o", "json"));
    assert.match(revision.spec.containers[0].image, /^127\.0\.0\.1:5001\/podgateway-provisioner:/);
    const ingressClass = kubectl("get", "ingresses.networking.internal.knative.dev", PROVISIONER, "-n", SERVICE_NS,
      "-o", "jsonpath={.metadata.annotations.networking\\.knative\\.dev/ingress\\.class}");
    assert.equal(ingressClass, "kourier.ingress.networking.knative.dev");
  });

  test("idle, the revision scales to zero; the next event starts a pod through the activator and is answered done", async () => {
    await waitForZero();
    const id = `zero-${run}`;
    await sendPending([id], SOURCE);
    await assertOnePodEach(await donePods(flow.sink, [id], 120_000));
    assert.ok((await revisionPods()).length >= 1, "a revision pod runs again");
  });

  test("200 events at zero, above containerConcurrency: 200 client pods, none twice, none refused by the provisioner", async () => {
    await waitForZero();
    const ids = Array.from({ length: 200 }, (_, i) => `burst-${run}-${i}`);
    await sendPending(ids, SOURCE, 64);
    await assertOnePodEach(await donePods(flow.sink, ids));
    // containerConcurrency = MAX_IN_FLIGHT: the queue-proxy and the activator hold what is beyond it, so the
    // provisioner itself never answers 429
    assert.equal(await busyAnswers(), 0, "the provisioner answered no event 429");
  });

  test("a revision pod taken down while events are in flight: it drains; nothing lost, nothing made twice", async () => {
    await sendPending([`warm-${run}`], SOURCE);
    await donePods(flow.sink, [`warm-${run}`]);
    const ids = Array.from({ length: 100 }, (_, i) => `drain-${run}-${i}`);
    const sending = (async () => {
      for (let i = 0; i < ids.length; i += 5) {
        await sendPending(ids.slice(i, i + 5), SOURCE, 5);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const victims = (await revisionPods()).map((p) => p.metadata!.name!);
    assert.ok(victims.length >= 1, "a revision pod to take down");
    kubectl("delete", "pods", "-n", SERVICE_NS, "--wait=false", ...victims);
    await sending;
    await assertOnePodEach(await donePods(flow.sink, ids));
  });
});
