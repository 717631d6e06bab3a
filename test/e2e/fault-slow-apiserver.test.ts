/**
 * Fault 4: a slow API server. The service reaches it through a TLS-passthrough TCP proxy that holds every byte
 * past KUBE_TIMEOUT_MS. Expected: bounded latency (about one API deadline), the retryable answer (503), and no
 * pile-up: with MAX_IN_FLIGHT small, the excess is answered 429 + Retry-After at once, and the in-flight slots
 * come back (the next burst is treated the same). Once the network heals, redelivery completes every event
 * with one pod each; pods whose create reached the API server while its answer was lost stayed gated meanwhile.
 */
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { clusterKubeconfig, listPods } from "../support/cluster.ts";
import { loadKubeconfig } from "../../src/kube/kubeconfig.ts";
import { attempt, DONE, deliver, KNATIVE_POLICY, pendingMessage, runLoad, sleep } from "../support/knative-sender.ts";
import { type RunningService, startService } from "../support/service.ts";
import { kubeconfigVia, type SlowProxy, startSlowProxy } from "../support/slow-proxy.ts";
import { serviceRuntime } from "../support/runtime.ts";
import { faultFrame } from "../support/fault.ts";

const TIMEOUT_MS = 1_000;
const DELAY_MS = 3_000;
const MAX_IN_FLIGHT = 4;
const BURST = 40;
const BURSTS = 3;

describe(`fault: slow API server (${serviceRuntime})`, () => {
  let proxy: SlowProxy;
  let service: RunningService;

  const fault = faultFrame("e2e-fault-slow", {
    cleanup: async () => {
      await service?.stop();
      await proxy?.close();
    },
  });

  before(async () => {
    const { server } = await loadKubeconfig(clusterKubeconfig());
    proxy = await startSlowProxy(server);
    service = await startService({
      CLIENT_NAMESPACE: fault.namespace.name,
      KUBECONFIG: kubeconfigVia(proxy.server, clusterKubeconfig()),
      KUBE_TIMEOUT_MS: String(TIMEOUT_MS),
      MAX_IN_FLIGHT: String(MAX_IN_FLIGHT),
    });
  });

  test("through the proxy with no delay, TLS verifies and an event completes", async () => {
    const delivery = await deliver(service.url, pendingMessage("slow-warm", "foo", "/e2e/fault/slow"));
    assert.equal(delivery.answer?.event?.type, DONE, delivery.answer?.body);
  });

  test(`bytes held ${DELAY_MS} ms (> KUBE_TIMEOUT_MS ${TIMEOUT_MS}): 503 within about one deadline, excess 429, no pile-up`, async (t) => {
    // connections opened before (start-up's access checks, the first test) are not this test's to count
    const before = proxy.stats().accepted;
    proxy.setDelay(DELAY_MS);
    const all: ReturnType<typeof pendingMessage>[] = [];
    try {
      const single = pendingMessage("slow-single", "foo", "/e2e/fault/slow");
      all.push(single);
      const one = await attempt(service.url, single, KNATIVE_POLICY);
      t.diagnostic(`single event: ${one.answer?.status} in ${one.attempt.ms} ms: ${one.answer?.body}`);
      assert.equal(one.answer?.status, 503, one.answer?.body);
      assert.match(JSON.parse(one.answer!.body).error, /timed out/);
      assert.ok(one.attempt.ms < TIMEOUT_MS * 2.5, `bounded latency: ${one.attempt.ms} ms`);

      for (let burst = 0; burst < BURSTS; burst++) {
        const messages = Array.from({ length: BURST }, (_, i) => pendingMessage(`slow-${burst}-${i}`, i % 2 ? "foo" : "bar", "/e2e/fault/slow"));
        all.push(...messages);
        const started = Date.now();
        const answers = await Promise.all(messages.map((message) => attempt(service.url, message, KNATIVE_POLICY)));
        const wall = Date.now() - started;
        const counts: Record<string, number> = {};
        for (const { answer, attempt: a } of answers) {
          assert.ok(answer, `answered: ${a.error} ${a.detail}`);
          counts[answer.status] = (counts[answer.status] ?? 0) + 1;
          assert.ok(answer.status === 503 || answer.status === 429, `retryable only: ${answer.status} ${answer.body}`);
          if (answer.status === 429) assert.ok(Number(answer.headers["retry-after"]) > 0, "429 carries Retry-After");
          assert.ok(a.ms < TIMEOUT_MS * 2.5, `bounded latency: ${a.ms} ms`);
        }
        t.diagnostic(`burst ${burst}: ${JSON.stringify(counts)} in ${wall} ms; proxy ${JSON.stringify(proxy.stats())}`);
        assert.ok((counts[503] ?? 0) >= 1 && (counts[503] ?? 0) <= MAX_IN_FLIGHT, `at most MAX_IN_FLIGHT (${MAX_IN_FLIGHT}) events reached Kubernetes`);
        assert.equal((counts[429] ?? 0) + (counts[503] ?? 0), BURST);
      }
      // No pile-up toward the API server either: connections grow with the events let in (a connect abandoned by
      // a timed-out call finishes its handshake later and joins the pool), never with the requests refused.
      const requests = 1 + BURSTS * BURST;
      assert.ok(proxy.stats().accepted - before <= 2 + (BURSTS + 1) * MAX_IN_FLIGHT,
        `${requests} requests, connections through the proxy: ${JSON.stringify(proxy.stats())}, ${before} of them before`);
      assert.deepEqual(fault.watch.violations, [], "pods created while answers were lost stay gated");
    } finally {
      proxy.setDelay(0);
    }

    // Healed: Knative's redelivery completes every event, one pod each.
    await sleep(DELAY_MS + 200); // bytes still held by the proxy arrive first
    const redelivered = await runLoad(all, { concurrency: MAX_IN_FLIGHT, deadlineMs: 120_000 }, (message) => deliver(service.url, message));
    for (const delivery of redelivered) assert.equal(delivery?.answer?.event?.type, DONE, `${delivery?.id}: ${delivery?.answer?.body}`);
    const retries = redelivered.reduce((sum, d) => sum + d!.attempts.length - 1, 0);
    t.diagnostic(`redelivered ${all.length} events after healing; ${retries} retries (429 while at MAX_IN_FLIGHT)`);
    const pods = await listPods(fault.namespace.name);
    const requestIds = pods.map((pod) => pod.metadata?.annotations?.["podgateway.io/request-id"]);
    assert.equal(pods.length, all.length + 1, "one pod per event (and the warm-up one)");
    assert.equal(new Set(requestIds).size, pods.length);
    await sleep(300);
    assert.deepEqual(fault.watch.duplicates(), []);
    assert.deepEqual(fault.watch.violations, []);
  });
});
