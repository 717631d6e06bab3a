/**
 * Fault 5: the same event delivered again after its answer, and 100 times at once, split over two service
 * processes (two replicas): one pod (one pod object ever, by the watch), and answers that are all `done` and
 * byte-identical.
 */
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { listPods, waitFor } from "../support/cluster.ts";
import { attempt, DONE, pendingMessage, sleep } from "../support/knative-sender.ts";
import { type RunningService, startService } from "../support/service.ts";
import { serviceRuntime } from "../support/runtime.ts";
import { faultFrame } from "../support/fault.ts";

const COPIES = 100;

describe(`fault: one event delivered ${COPIES} times at once to two replicas (${serviceRuntime})`, () => {
  let replicas: RunningService[] = [];

  const fault = faultFrame("e2e-fault-dup", {
    cleanup: async () => {
      await Promise.all(replicas.map((replica) => replica.stop()));
    },
  });

  before(async () => {
    replicas = await Promise.all([0, 1].map(() => startService({ CLIENT_NAMESPACE: fault.namespace.name })));
  });

  test("delivered again after its answer: the same done answer, byte for byte, and one pod", async () => {
    const message = pendingMessage("dup-again", "foo", "/e2e/fault/dup");
    const send = async () => (await attempt(replicas[0]!.url, message, { timeoutMs: 30_000, transport: "fetch" })).answer!;
    const first = await send();
    const second = await send();
    assert.equal(first.event?.type, DONE, first.body);
    assert.deepEqual(second.event, first.event);
    const pods = (await listPods(fault.namespace.name)).filter((pod) => pod.metadata?.annotations?.["podgateway.io/request-id"] === message.id);
    assert.equal(pods.length, 1, "one pod");
  });

  for (const gateway of ["foo", "bar"]) {
    test(`${gateway}: one pod, ${COPIES} identical done answers`, async (t) => {
      const message = pendingMessage(`dup-${gateway}`, gateway, "/e2e/fault/dup");
      const started = Date.now();
      const results = await Promise.all(Array.from({ length: COPIES }, (_, i) => attempt(replicas[i % 2]!.url, message, { timeoutMs: 60_000, transport: "fetch" })));
      t.diagnostic(`${COPIES} concurrent deliveries answered in ${Date.now() - started} ms`);
      const first = results[0]!.answer!;
      for (const { answer, attempt: a } of results) {
        assert.ok(answer, `answered: ${a.error} ${a.detail}`);
        assert.equal(answer.status, 200, answer.body);
        assert.equal(answer.event?.type, DONE, answer.body);
        assert.equal(answer.body, first.body, "identical body");
        const ce = (headers: Record<string, string>) => Object.fromEntries(Object.entries(headers).filter(([key]) => key.startsWith("ce-") || key === "content-type"));
        assert.deepEqual(ce(answer.headers), ce(first.headers), "identical ce-* headers");
      }
      const pods = (await listPods(fault.namespace.name)).filter((pod) => pod.metadata?.annotations?.["podgateway.io/request-id"] === message.id);
      assert.equal(pods.length, 1, "one pod");
      assert.equal(pods[0]!.metadata?.name, first.event?.data?.pod_name);
      assert.deepEqual(pods[0]!.spec?.schedulingGates ?? [], []);
      // Log lines are written once per event-loop turn, so the last ones may still be on their way.
      const outcomes = () => replicas.flatMap((replica) => replica.logs.filter((r) => r.msg === "event" && r.id === message.id));
      await waitFor("a log line for every copy", () => Promise.resolve(outcomes().length >= COPIES), 5_000).catch(() => {});
      assert.equal(outcomes().length, COPIES, "every copy was handled (none refused 429)");
      await sleep(300);
      assert.deepEqual(fault.watch.duplicates(), [], "one pod object ever for the request");
      assert.deepEqual(fault.watch.violations, []);
    });
  }
});
