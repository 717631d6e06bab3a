/**
 * Fault 2: a gateway's webhook is down, and separately a gateway is unknown. Throughout, every state of every pod
 * in the namespace is watched: no client pod without `gateway-init` may ever get `spec.nodeName` or lose its
 * scheduling gate. The answers are the documented ones for the webhook's failurePolicy: `Fail` (the local cluster,
 * like the pod-gateway chart) makes the API server refuse the create with a 500, so the service answers 503 and
 * the sender redelivers; `Ignore` would let the pod through unmutated, so the answer would be a failed event
 * (GatewayNotRouted).
 */
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { adminClient, cluster, listPods } from "../support/cluster.ts";
import { attempt, DONE, deliver, FAILED, KNATIVE_POLICY, pendingMessage, runLoad, sleep } from "../support/knative-sender.ts";
import { type RunningService, startService } from "../support/service.ts";
import { serviceRuntime } from "../support/runtime.ts";
import { clusterAsync, faultFrame } from "../support/fault.ts";

const SCALE = Number(process.env.PGW_FAULT_SCALE) || 200;
const M = Math.max(10, Math.round(SCALE / 10));

async function failurePolicy(gateway: string): Promise<string> {
  const kube = await adminClient();
  const config = await kube.performRequest<{ webhooks: { failurePolicy?: string }[] }>({
    method: "GET",
    path: `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${gateway}-pod-gateway`,
  });
  return config.webhooks[0]?.failurePolicy ?? "Fail";
}

describe(`fault: webhook down, gateway unknown (${serviceRuntime})`, () => {
  let service: RunningService;

  const fault = faultFrame("e2e-fault-routing", {
    cleanup: async () => {
      cluster("start", "webhook-foo");
      await service?.stop();
    },
  });

  before(async () => {
    service = await startService({ CLIENT_NAMESPACE: fault.namespace.name });
  });

  test(`webhook-foo stopped: ${M} foo events get the documented answer, no pod; once it is back they complete`, async (t) => {
    const policy = await failurePolicy("foo");
    const messages = Array.from({ length: M }, (_, i) => pendingMessage(`webhook-down-${i}`, "foo", "/e2e/fault/webhook"));
    await clusterAsync("stop", "webhook-foo");
    let downAnswers;
    try {
      downAnswers = await runLoad(messages, { concurrency: 8, deadlineMs: 60_000 }, (message) => attempt(service.url, message, { ...KNATIVE_POLICY }));
    } finally {
      await clusterAsync("start", "webhook-foo");
    }
    const statuses: Record<string, number> = {};
    for (const result of downAnswers) {
      const answer = result?.answer;
      assert.ok(answer, `answered: ${JSON.stringify(result?.attempt)}`);
      statuses[answer.status] = (statuses[answer.status] ?? 0) + 1;
      if (policy === "Fail") {
        assert.equal(answer.status, 503, answer.body);
        assert.equal(answer.headers["ce-type"], undefined, "no result event: the sender must redeliver");
        assert.match(JSON.parse(answer.body).error, /webhook/i, "the 503 says the webhook call failed");
      } else {
        assert.equal(answer.status, 200, answer.body);
        assert.equal(answer.event?.type, FAILED);
        assert.equal(answer.event?.data?.reason, "GatewayNotRouted");
      }
    }
    t.diagnostic(`failurePolicy ${policy}; answers while webhook-foo was down: ${JSON.stringify(statuses)}`);
    assert.deepEqual((await listPods(fault.namespace.name, "setGateway=foo")).map((pod) => pod.metadata?.name), [], "no foo pod while its webhook is down");

    // Back: Knative's redelivery completes every one of them, routed by foo.
    const redelivered = await runLoad(messages, { concurrency: 8, deadlineMs: 120_000 }, (message) => deliver(service.url, message));
    for (const delivery of redelivered) {
      assert.equal(delivery?.answer?.event?.type, DONE, delivery?.answer?.body);
    }
    const pods = await listPods(fault.namespace.name, "setGateway=foo");
    assert.equal(pods.length, M);
    for (const pod of pods) {
      const init = pod.spec?.initContainers?.find((c) => c.name === "gateway-init");
      assert.ok(init && JSON.stringify(init).includes("foo-pod-gateway"), `${pod.metadata?.name} routed by foo`);
    }
    assert.deepEqual(fault.watch.violations, []);
    assert.deepEqual(fault.watch.duplicates(), []);
  });

  test("webhook-foo stopped: a bar event meets foo's failurePolicy too (every webhook sees every routed-namespace pod)", async (t) => {
    const policy = await failurePolicy("foo");
    await clusterAsync("stop", "webhook-foo");
    let result;
    try {
      result = await attempt(service.url, pendingMessage("webhook-down-bar", "bar", "/e2e/fault/webhook"), KNATIVE_POLICY);
    } finally {
      await clusterAsync("start", "webhook-foo");
    }
    t.diagnostic(`bar while foo's webhook was down: ${result.answer?.status} ${result.answer?.body}`);
    // With Fail, foo's webhook (namespaceSelector only, as in the chart) blocks bar pods too: retryable, not lost.
    assert.equal(result.answer?.status, policy === "Fail" ? 503 : 200, result.answer?.body);
    const redelivered = await deliver(service.url, pendingMessage("webhook-down-bar", "bar", "/e2e/fault/webhook"));
    assert.equal(redelivered.answer?.event?.type, DONE, redelivered.answer?.body);
    assert.deepEqual(fault.watch.violations, []);
  });

  test(`unknown gateways: ${M} events answered GatewayNotRouted; the unrouted pods existed only gated and are gone`, async (t) => {
    const gateways = ["baz", "qux", "foo-typo", "Foo", "bar2"];
    const messages = Array.from({ length: M }, (_, i) => pendingMessage(`unknown-${i}`, gateways[i % gateways.length], "/e2e/fault/unknown"));
    const answers = await runLoad(messages, { concurrency: 8, deadlineMs: 60_000 }, (message) => deliver(service.url, message));
    for (const [i, delivery] of answers.entries()) {
      assert.equal(delivery?.answer?.status, 200, delivery?.answer?.body);
      assert.equal(delivery?.answer?.event?.type, FAILED);
      assert.equal(delivery?.answer?.event?.data?.reason, "GatewayNotRouted");
      assert.equal(delivery?.answer?.event?.data?.gateway_name, gateways[i % gateways.length]);
    }
    await sleep(1_000);
    const unrouted = [...fault.watch.seen.values()].filter((pod) => !pod.routed);
    t.diagnostic(`unrouted pod objects seen by the watch: ${unrouted.length}, all deleted: ${unrouted.every((pod) => pod.deleted)}`);
    assert.ok(unrouted.length >= M, "the watch saw the unrouted pods (so it would have seen them scheduled)");
    assert.ok(unrouted.every((pod) => !pod.everScheduled && !pod.everUngated), "none was ever scheduled or ungated");
    assert.ok(unrouted.every((pod) => pod.deleted), "every unrouted pod was deleted");
    const left = (await listPods(fault.namespace.name)).filter((pod) => !pod.spec?.initContainers?.some((c) => c.name === "gateway-init"));
    assert.deepEqual(left.map((pod) => pod.metadata?.name), [], "no unrouted pod is left");
    assert.deepEqual(fault.watch.violations, []);
  });
});
