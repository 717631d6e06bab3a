/**
 * `node bench/serving.ts [--zero=8] [--warm=30]`: what a sender waits for with the provisioner on real Knative Serving
 * (a bench mode, not CI). On the local cluster (`npm run cluster -- up`): deploy/ with its Knative Service on Serving
 * (cluster/serving.sh), our image from the local registry (`npm run publish:local` first), clients on kwok's nodes,
 * config-autoscaler's idle window shortened (scale to zero ~15 s after the last event).
 *   zero: the revision at zero, one pending event sent to the broker → its scheduling.done at the sink (activator,
 *         a revision pod started, the provisioner's first event in a fresh process);
 *   warm: one event at a time to a running revision pod.
 * The broker's 202 comes once the provisioner has answered (the in-memory channel is synchronous), the result at the
 * sink a little later (published back through the broker).
 * Then, at zero, what Serving itself costs idle: its pods' RSS and CPU over 30 s (knative-serving, kourier-system).
 * Writes bench/results/serving-<date>.json; BENCHMARKS.md's "Knative Serving" section comes from the newest one.
 */
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { cpuSeconds, rssMiB, sleep } from "./lib/cluster.ts";
import { machine } from "./lib/facts.ts";
import { percentile, round, summarize } from "./lib/stats.ts";
import { containerPids } from "../test/support/real-node.ts";
import { donePods, revisionPods, sendPending, type ServingFlow, startServingFlow, waitForZero } from "../test/support/serving.ts";
import { saveResults } from "./report.ts";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const { values: flags } = parseArgs({ options: { zero: { type: "string", default: "8" }, warm: { type: "string", default: "30" } } });

/** ms from sending one event to the broker's 202 and to its result at the sink. */
async function timeOne(flow: ServingFlow, id: string): Promise<{ accepted: number; done: number }> {
  const t0 = performance.now();
  await sendPending([id], "/bench/serving");
  const accepted = performance.now() - t0;
  await donePods(flow.sink, [id], 120_000);
  return { accepted, done: performance.now() - t0 };
}

/** RSS (MiB) and CPU (ms per second) of Serving's and Kourier's containers, by pod name prefix, over `seconds`. */
async function servingIdle(seconds: number) {
  const containers = ["knative-serving", "kourier-system"].flatMap((ns) => containerPids(ns));
  const before = containers.map((c) => cpuSeconds(c.pid));
  await sleep(seconds * 1000);
  const byPod: Record<string, { rssMiB: number; cpuMsPerS: number }> = {};
  containers.forEach((c, i) => {
    const name = c.pod.replace(/-[a-z0-9]+-[a-z0-9]+$/, "");
    const entry = (byPod[name] ??= { rssMiB: 0, cpuMsPerS: 0 });
    entry.rssMiB = round(entry.rssMiB + rssMiB(c.pid).rss, 1);
    entry.cpuMsPerS = round(entry.cpuMsPerS + ((cpuSeconds(c.pid) - before[i]!) * 1000) / seconds, 2);
  });
  return byPod;
}

const stats = (values: number[]) => ({ ...summarize(values), p95: percentile([...values].sort((a, b) => a - b), 95) });

const startedAt = new Date();
const stamp = startedAt.toISOString().replace(/[:.]/g, "-");
const flow = await startServingFlow({ kwokClients: true, shortIdle: true });
try {
  const zero: { accepted: number; done: number }[] = [];
  for (let i = 0; i < Number(flags.zero); i++) {
    await waitForZero();
    zero.push(await timeOne(flow, `bench-zero-${stamp}-${i}`));
  }
  await timeOne(flow, `bench-warmup-${stamp}`);
  const warm: { accepted: number; done: number }[] = [];
  for (let i = 0; i < Number(flags.warm); i++) warm.push(await timeOne(flow, `bench-warm-${stamp}-${i}`));
  const pods = (await revisionPods()).length;
  await waitForZero();
  const idle = await servingIdle(30);
  const results = {
    startedAt: startedAt.toISOString(),
    machine: machine(),
    zero: { n: zero.length, acceptedMs: stats(zero.map((s) => s.accepted)), doneMs: stats(zero.map((s) => s.done)) },
    warm: { n: warm.length, acceptedMs: stats(warm.map((s) => s.accepted)), doneMs: stats(warm.map((s) => s.done)), revisionPods: pods },
    idle,
    samples: { zero: zero.map((s) => [round(s.accepted, 0), round(s.done, 0)]), warm: warm.map((s) => [round(s.accepted, 0), round(s.done, 0)]) },
  };
  console.log(JSON.stringify({ zero: results.zero, warm: results.warm }, null, 1));
  saveResults(repo, "serving", stamp, results);
} finally {
  await flow.stop();
}
