/**
 * Fault 1: the API server is stopped for a few seconds and started again in the middle of a load of N events
 * from a sender that follows Knative's retry rules. Afterwards: exactly N client pods, no request ever had a
 * second pod (watched, not just listed), and every event got exactly one final answer, `done`.
 * Then stopped while idle: transient trouble is the sender's to retry, so an event gets 503 (never a failed event),
 * the service stays ready, and once the API server is back the same event succeeds.
 *
 * N = PGW_FAULT_SCALE (default 200 for CI; 1000 for the full run recorded in docs/reliability.md).
 */
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { cluster, getPodOrNull, listPods, waitFor } from "../support/cluster.ts";
import { attempt, DONE, deliver, KNATIVE_POLICY, pendingMessage, runLoad, sleep, summarize } from "../support/knative-sender.ts";
import { type RunningService, startService } from "../support/service.ts";
import { serviceRuntime } from "../support/runtime.ts";
import { clusterAsync, faultFrame } from "../support/fault.ts";

const N = Number(process.env.PGW_FAULT_SCALE) || 200;
const OUTAGE_MS = 3_000;

describe(`fault: API server stopped, during a load of ${N} events and while idle (${serviceRuntime})`, () => {
  let service: RunningService;

  const fault = faultFrame("e2e-fault-restart", {
    cleanup: async () => {
      cluster("start", "apiserver");
      await service?.stop();
    },
  });

  before(async () => {
    service = await startService({ CLIENT_NAMESPACE: fault.namespace.name, KUBE_TIMEOUT_MS: "3000" });
  });

  test("exactly N pods, no duplicates, one done answer per event", async (t) => {
    const messages = Array.from({ length: N }, (_, i) => pendingMessage(`restart-${i}`, i % 2 ? "bar" : "foo", "/e2e/fault/restart"));
    let outage: Promise<void> | undefined;
    const timeline: Record<string, number> = {};
    const started = Date.now();

    const deliveries = await runLoad(messages, {
      concurrency: 16,
      deadlineMs: 240_000,
      onProgress: (finished) => {
        if (outage || finished < Math.floor(N / 4)) return;
        outage = (async () => {
          timeline.stop_at_ms = Date.now() - started;
          await clusterAsync("stop", "apiserver");
          timeline.stopped_at_ms = Date.now() - started;
          await sleep(OUTAGE_MS);
          await clusterAsync("start", "apiserver");
          timeline.started_at_ms = Date.now() - started;
        })();
      },
    }, (message) => deliver(service.url, message, { ...KNATIVE_POLICY, deadlineMs: 200_000 }));
    await outage;
    timeline.load_ms = Date.now() - started;

    const summary = summarize(deliveries);
    t.diagnostic(`load: ${JSON.stringify(summary)}`);
    t.diagnostic(`timeline: ${JSON.stringify(timeline)}; watch reconnects ${fault.watch.reconnects}`);
    assert.ok(outage, "the API server was stopped during the load");
    assert.ok((summary.attempts ?? 0) > N, "the outage hit the load: some events needed retries");

    // One final answer per event: done, with the pod named after the request.
    for (const [index, delivery] of deliveries.entries()) {
      assert.ok(delivery, `event ${index} was sent`);
      assert.equal(delivery.gaveUp, false, `event ${delivery.id} gave up: ${JSON.stringify(delivery.attempts.slice(-3))}`);
      assert.equal(delivery.answer?.status, 200, `event ${delivery.id}: ${delivery.answer?.body}`);
      assert.equal(delivery.answer?.event?.type, DONE, `event ${delivery.id}: ${delivery.answer?.body}`);
      assert.equal(delivery.answer?.event?.causationid, delivery.id);
      const nonFinal = delivery.attempts.slice(0, -1).filter((a) => a.status && a.status < 300);
      assert.deepEqual(nonFinal, [], `event ${delivery.id} got a 2xx before its final answer`);
    }

    // Exactly N pods, one per request, all routed and released; none ever duplicated (watched across the restart).
    const pods = await listPods(fault.namespace.name);
    const ids = pods.map((pod) => pod.metadata?.annotations?.["podgateway.io/request-id"]);
    assert.equal(pods.length, N, "exactly N client pods");
    assert.equal(new Set(ids).size, N, "one pod per event id");
    for (const pod of pods) {
      assert.ok(pod.spec?.initContainers?.some((c) => c.name === "gateway-init"), `${pod.metadata?.name} is routed`);
      assert.deepEqual(pod.spec?.schedulingGates ?? [], [], `${pod.metadata?.name} is released`);
    }
    const byName = new Map(pods.map((pod) => [pod.metadata!.name!, pod]));
    for (const delivery of deliveries) {
      const pod = byName.get(delivery!.answer!.event!.data!.pod_name!);
      assert.equal(pod?.metadata?.annotations?.["podgateway.io/request-id"], delivery!.id, "the done answer names the event's pod");
    }
    await sleep(500); // let the watch catch up with the last updates
    assert.deepEqual(fault.watch.duplicates(), [], "no request ever had a second pod");
    assert.deepEqual(fault.watch.violations, [], "no unrouted pod was ever scheduled or ungated");
    t.diagnostic(`pods: ${pods.length}, pod objects ever seen: ${fault.watch.seen.size}, duplicates: ${fault.watch.duplicates().length}`);
  });

  // After the load: its pod count is exact.
  test("stopped while idle: 503 and no failed event, still ready; started again: the same event succeeds", async () => {
    const message = pendingMessage("outage-1", "foo", "/e2e/fault/outage");
    const send = async () => (await attempt(service.url, message, { timeoutMs: 30_000, transport: "fetch" })).answer!;
    cluster("stop", "apiserver");
    try {
      const down = await send();
      assert.equal(down.status, 503, down.body);
      assert.equal(down.event, undefined, "no result event while Kubernetes is unreachable");
      assert.match(JSON.parse(down.body).error, /retry later/);
      // Readiness is this process's, not the API server's: Knative keeps routing here, and each event gets its 503.
      for (let probe = 0; probe < 3; probe++) {
        assert.equal((await fetch(`${service.url}/readyz`)).status, 200, "ready during the API server's outage");
        await sleep(600);
      }
    } finally {
      cluster("start", "apiserver");
    }
    await waitFor("the API server to answer", async () => (await send()).status !== 503, 60_000);
    const up = await send();
    assert.equal(up.status, 200, up.body);
    assert.equal(up.event?.type, DONE);
    const pod = await getPodOrNull(fault.namespace.name, up.event!.data!.pod_name!);
    assert.ok(pod?.spec?.initContainers?.some((container) => container.name === "gateway-init"));
  });
});
