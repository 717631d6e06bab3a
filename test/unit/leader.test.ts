/**
 * Leader election against the in-memory API server (leases with resourceVersions): one leader at a time;
 * a leader that stops cleanly hands over at once; one that goes silent is replaced after the lease duration,
 * and stops working itself by its renew deadline.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { runLeaderElection } from "../../src/controller/leader.ts";
import { KubeTransportError } from "../../src/kube/errors.ts";
import { fenced } from "../../src/kube/fence.ts";
import type { KubeRequest } from "../../src/kube/rest-client.ts";
import { FakeKube } from "./lifecycle-fake-kube.ts";

const timing = { leaseDurationMs: 600, renewDeadlineMs: 400, retryPeriodMs: 50 };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function candidate(kube: FakeKube, identity: string, leading: Set<string>, overlaps: string[]) {
  const stop = new AbortController();
  const done = runLeaderElection({ kube, namespace: "ns", name: "lead", identity, log: () => {}, ...timing }, async ({ signal }) => {
    if (leading.size > 0) overlaps.push(`${identity} while ${[...leading]}`);
    leading.add(identity);
    await new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
    leading.delete(identity);
  }, stop.signal);
  return { stop: () => stop.abort(), done };
}

test("one leader at a time; a clean stop hands over within a retry period or two", async () => {
  const kube = new FakeKube();
  const leading = new Set<string>();
  const overlaps: string[] = [];
  const a = candidate(kube, "a", leading, overlaps);
  const b = candidate(kube, "b", leading, overlaps);
  await sleep(300);
  assert.equal(leading.size, 1);
  const first = [...leading][0]!;
  const [leader, standby] = first === "a" ? [a, b] : [b, a];
  const stopped = Date.now();
  leader.stop();
  await leader.done;
  const count = () => leading.size; // (assert.equal narrowed leading.size to 1 above)
  while (count() === 0 && Date.now() - stopped < 2_000) await sleep(10);
  assert.equal(count(), 1);
  assert.notEqual([...leading][0], first);
  assert.ok(Date.now() - stopped < 300, `handed over after ${Date.now() - stopped} ms`);
  standby.stop();
  await standby.done;
  assert.deepEqual(overlaps, []);
});

/**
 * `a` leads and `b` stands by; then every call of `a`'s fails, as if the API server were unreachable from it, and
 * `onCut` runs. Returns when `a` stopped leading and `b` started, in ms after the cut (monotonic clock).
 */
async function silenceTheLeader(onCut: () => void = () => {}) {
  const kube = new FakeKube();
  const leading = new Set<string>();
  const overlaps: string[] = [];
  let cut = false;
  const cuttable = { performRequest: (request: KubeRequest) => cut ? Promise.reject(new KubeTransportError("cut")) : kube.performRequest(request) };
  const a = candidate(cuttable as unknown as FakeKube, "a", leading, overlaps);
  await sleep(200);
  assert.deepEqual([...leading], ["a"]);
  const b = candidate(kube, "b", leading, overlaps);
  await sleep(200);
  assert.deepEqual([...leading], ["a"], "a live leader keeps the lease");

  const silenced = performance.now();
  cut = true;
  onCut();
  while (leading.has("a") && performance.now() - silenced < 3_000) await sleep(5);
  const aStopped = Math.round(performance.now() - silenced);
  while (!leading.has("b") && performance.now() - silenced < 3_000) await sleep(5);
  const bStarted = Math.round(performance.now() - silenced);
  a.stop();
  b.stop();
  await Promise.all([a.done, b.done]);
  return { aStopped, bStarted, overlaps };
}

test("a silent leader is replaced only after the lease duration, and has stopped working by its renew deadline", async () => {
  const { aStopped, bStarted, overlaps } = await silenceTheLeader();
  assert.ok(aStopped <= timing.renewDeadlineMs + timing.retryPeriodMs + 50, `a stopped after ${aStopped} ms`);
  assert.ok(bStarted >= timing.leaseDurationMs - 2 * timing.retryPeriodMs, `b started after ${bStarted} ms`);
  assert.ok(bStarted <= timing.leaseDurationMs + 3 * timing.retryPeriodMs + 100, `b started after ${bStarted} ms`);
  assert.deepEqual(overlaps, []);
});

test("the wall clock set back an hour changes no timing: the silent leader still stops by its renew deadline, the standby takes over after the lease duration", async (t) => {
  const realNow = Date.now;
  t.after(() => {
    Date.now = realNow;
  });
  const { aStopped, bStarted, overlaps } = await silenceTheLeader(() => {
    Date.now = () => realNow() - 3_600_000;
  });
  Date.now = realNow;
  assert.ok(aStopped <= timing.renewDeadlineMs + timing.retryPeriodMs + 50, `a stopped after ${aStopped} ms`);
  assert.ok(bStarted <= timing.leaseDurationMs + 3 * timing.retryPeriodMs + 100, `b started after ${bStarted} ms`);
  assert.deepEqual(overlaps, []);
});

test("a leader paused past its renew deadline (as by SIGSTOP) writes nothing of its term after it resumes", async () => {
  const kube = new FakeKube();
  /** The work's writes, by term, with when they reached the API server (monotonic clock). */
  const writes: { term: number; at: number }[] = [];
  let terms = 0;
  const stop = new AbortController();
  const done = runLeaderElection({ kube, namespace: "ns", name: "lead", identity: "a", log: () => {}, ...timing }, async (term) => {
    const number = ++terms;
    // What the tracker does: writes on a timer, through the client fenced with the term.
    const work = fenced({
      performRequest: async () => {
        writes.push({ term: number, at: performance.now() });
        return {} as never;
      },
      performStream: () => Promise.reject(new Error("unused")),
    }, term);
    const timer = setInterval(() => work.performRequest({ method: "PATCH", path: "/work" }).catch(() => {}), 10);
    await new Promise((resolve) => term.signal.addEventListener("abort", resolve, { once: true }));
    clearInterval(timer);
  }, stop.signal);
  await sleep(200);
  assert.equal(terms, 1);
  assert.ok(writes.length > 0, "the first term wrote");
  // The whole process stops, timers included, past the renew deadline and the lease duration.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, timing.leaseDurationMs + 100);
  const resumed = performance.now();
  await sleep(300);
  stop.abort();
  await done;
  const late = writes.filter((write) => write.term === 1 && write.at >= resumed);
  assert.deepEqual(late, [], `term 1 wrote ${late.length} times after the pause`);
});
