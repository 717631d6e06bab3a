/**
 * Fault 3: SIGTERM to the service in the middle of a load. Every request it accepted is answered (no connection
 * broken under a request it read), it exits 0 within SHUTDOWN_GRACE_MS, and the remainder (connections refused
 * once it stopped listening) redelivered to a restarted instance completes, with no duplicate pod.
 *
 * Each attempt uses a connection of its own, so "refused" (never accepted) and "reset" (accepted, not answered)
 * are told apart exactly. A reset whose request the old instance never read (no log line, no pod) was still in
 * the kernel's accept queue when the listener closed: the service never accepted it, and it is redelivered
 * like a refused one; it is counted separately.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { before, describe, test } from "node:test";
import { listPods } from "../support/cluster.ts";
import { attempt, type Attempt, DONE, deliver, KNATIVE_POLICY, pendingMessage, runLoad, sleep } from "../support/knative-sender.ts";
import { type RunningService, startService } from "../support/service.ts";
import { serviceRuntime } from "../support/runtime.ts";
import { faultFrame } from "../support/fault.ts";

const N = Number(process.env.PGW_FAULT_SCALE) || 200;

/**
 * SIGTERM by pid, then the exit code. Not `child.kill()`: Deno's node:child_process then reports any exit of a
 * killed child as (null, signal), even a clean `exit(0)` from its SIGTERM handler.
 */
function terminate(service: RunningService): Promise<number | null> {
  const exit = once(service.process, "exit").then(([code]) => code as number | null);
  process.kill(service.process.pid!, "SIGTERM");
  return exit;
}
const GRACE_MS = 10_000;

describe(`fault: SIGTERM during a load of ${N} events (${serviceRuntime})`, () => {
  let first: RunningService;
  let second: RunningService | undefined;

  const fault = faultFrame("e2e-fault-sigterm", {
    cleanup: async () => {
      // (RunningService.stop waits for an "exit" that already happened when the process died of a signal.)
      if (first && first.process.exitCode === null && first.process.signalCode === null) await first.stop("SIGKILL");
      await second?.stop();
    },
  });

  before(async () => {
    first = await startService({ CLIENT_NAMESPACE: fault.namespace.name, SHUTDOWN_GRACE_MS: String(GRACE_MS) });
  });

  test("accepted requests are answered, exit 0 within the grace period, the rest completes elsewhere", async (t) => {
    const messages = Array.from({ length: N }, (_, i) => pendingMessage(`sigterm-${i}`, i % 2 ? "foo" : "bar", "/e2e/fault/sigterm"));
    let termAt = 0;
    let exited: Promise<number | null> | undefined;
    const results = await runLoad(messages, {
      concurrency: 24,
      deadlineMs: 120_000,
      onProgress: (finished) => {
        if (exited || finished < Math.floor(N / 3)) return;
        termAt = Date.now();
        exited = terminate(first);
      },
    }, (message) => attempt(first.url, message, { timeoutMs: 30_000, transport: "fresh" }));
    assert.ok(exited, "SIGTERM was sent during the load");
    const code = await exited;
    const exitMs = Date.now() - termAt;

    const outcome = (a: Attempt) => a.status ? `http_${a.status}` : `error_${a.error}`;
    const counts: Record<string, number> = {};
    for (const result of results) counts[outcome(result!.attempt)] = (counts[outcome(result!.attempt)] ?? 0) + 1;
    t.diagnostic(`first instance: ${JSON.stringify(counts)}; exit ${code} after ${exitMs} ms (grace ${GRACE_MS} ms)`);
    assert.equal(code, 0, `exit 0 (every in-flight event finished), not ${code} / signal ${first.process.signalCode}; last output:\n${first.output().split("\n").slice(-8).join("\n")}`);
    assert.ok(exitMs < GRACE_MS, `exited within the grace period (${exitMs} ms)`);
    assert.ok(first.logs.some((record) => record.msg === "stopped"));

    // Whatever was answered was answered properly; resets only for requests the service never read.
    const handled = new Set(first.logs.filter((record) => record.msg === "event").map((record) => record.id));
    const podsNow = new Set((await listPods(fault.namespace.name)).map((pod) => pod.metadata?.annotations?.["podgateway.io/request-id"]));
    let unread = 0;
    for (const [i, result] of results.entries()) {
      const { attempt: a, answer } = result!;
      if (answer) {
        assert.equal(answer.status, 200, `${messages[i]!.id}: ${answer.body}`);
        assert.equal(answer.event?.type, DONE);
        continue;
      }
      assert.ok(a.error === "refused" || a.error === "reset", `${messages[i]!.id}: ${a.error} ${a.detail}`);
      if (a.error === "reset") {
        assert.ok(!handled.has(messages[i]!.id) && !podsNow.has(messages[i]!.id), `${messages[i]!.id}: the service read it, then broke the connection: ${a.detail}`);
        unread++;
      }
    }
    const inFlight = results.filter((result) => result!.answer && result!.attempt.at < termAt && result!.attempt.at + result!.attempt.ms >= termAt);
    assert.ok(inFlight.length > 0, "requests in flight at SIGTERM were answered");
    const remainder = messages.filter((_, i) => !results[i]!.answer);
    t.diagnostic(`answered though in flight at SIGTERM: ${inFlight.length}; remainder to redeliver: ${remainder.length} (of which reset in the accept queue: ${unread})`);
    assert.ok(remainder.length > 0, "the load went on after SIGTERM, so some requests were refused");

    // Redelivered to a restarted instance (as Knative would, to another pod): all done, no duplicates.
    second = await startService({ CLIENT_NAMESPACE: fault.namespace.name });
    const redelivered = await runLoad(remainder, { concurrency: 16, deadlineMs: 120_000 }, (message) => deliver(second!.url, message, KNATIVE_POLICY));
    for (const delivery of redelivered) assert.equal(delivery?.answer?.event?.type, DONE, delivery?.answer?.body);
    // A sample of the answered ones again: the very same answer from the new instance.
    for (const [i, result] of results.entries()) {
      if (!result!.answer || i % 10) continue;
      const again = await deliver(second.url, messages[i]!, KNATIVE_POLICY);
      assert.equal(again.answer?.body, result!.answer.body);
      assert.equal(again.answer?.headers["ce-id"], result!.answer.headers["ce-id"]);
    }

    const pods = await listPods(fault.namespace.name);
    assert.equal(pods.length, N, "exactly N pods");
    assert.equal(new Set(pods.map((pod) => pod.metadata?.annotations?.["podgateway.io/request-id"])).size, N);
    await sleep(300);
    assert.deepEqual(fault.watch.duplicates(), []);
    assert.deepEqual(fault.watch.violations, []);
  });
});
