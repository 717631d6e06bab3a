/**
 * `npm run bench` (full, ~10 min) and `npm run bench -- --quick` (~1 min smoke test, what CI runs).
 *
 * Against the local cluster (`npm run cluster -- up`), measures the service (a child process receiving
 * binary-mode CloudEvents over HTTP) against a baseline (provisionClient called in a bare loop in this
 * process: the same Kubernetes API calls with the same HTTP client, nothing else):
 *   1. cold start: exec → first event answered, for Node, Deno and the single executable (if built)
 *   1b. fresh processes (what a new revision pod does): the executable and Knative JobSink, each started anew per run
 *      and concurrency, exec → first answer, a short warm-up, then their own CPU per event (phases/fresh.ts)
 *   2. events → routed pods per second and per-event latency at several concurrencies, in one interleaved run:
 *      baseline, the single executable (if built), the Node service, and Knative JobSink as a peer (if built)
 *   3. RSS: idle, after 1,000 and after 10,000 events, for the single executable (if built: the memory targets
 *      are judged against it), the Node service, and Node with --max-semi-space-size=2
 *   4. a burst of distinct events: time to drain, pods created, duplicates, lost
 *   5. image size, from dist/build-info.txt if `npm run build` ran
 *   6. correctness beside the peer: one event as 10 concurrent copies, and bad input
 * Writes bench/results/<date>.json; a full run also regenerates bench/results/latest.svg and BENCHMARKS.md
 * (see bench/report.ts; `node bench/report.ts <file>` renders another run).
 *
 * Exits non-zero when the harness or the service misbehaved: an event lost, a duplicate pod, a pod not routed
 * or still gated, a wrong reply, a crash. Timing never fails the run (CI has no timing assertions).
 *
 * Phases live in bench/phases/, shared state and checks in bench/lib/context.ts.
 *
 * Options: --quick; --only=cold,fresh,throughput,rss,burst,image,correctness (subset, for debugging); --concurrency=16,64
 * (other concurrency points); --rss-checkpoints=1000,3000 (other RSS checkpoints); --fresh-runs=N (fresh processes per side and concurrency); --no-report (do not touch BENCHMARKS.md / latest.svg); --cpu-prof (run ours
 * with `node --cpu-prof`, profiles in bench/results/profiles/).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import { dirname, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Cluster, findCluster } from "./lib/cluster.ts";
import { BenchRun, type Settings } from "./lib/context.ts";
import { gitInfo, machine, versions } from "./lib/facts.ts";
import { round } from "./lib/stats.ts";
import { burstPhase } from "./phases/burst.ts";
import { coldStartPhase } from "./phases/cold.ts";
import { correctnessPhase } from "./phases/correctness.ts";
import { freshPhase } from "./phases/fresh.ts";
import { imagePhase } from "./phases/image.ts";
import { rssPhase } from "./phases/rss.ts";
import { throughputPhase } from "./phases/throughput.ts";
import { writeReport } from "./report.ts";
import type { Results } from "./types.ts";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const { values: flags } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    only: { type: "string" },
    "no-report": { type: "boolean", default: false },
    "cpu-prof": { type: "boolean", default: false },
    concurrency: { type: "string" },
    "rss-checkpoints": { type: "string" },
    "fresh-runs": { type: "string" },
  },
  strict: true,
});
const quick = flags.quick!;
const ALL_PHASES = ["cold", "fresh", "throughput", "rss", "burst", "image", "correctness"];
const phases = new Set((flags.only ?? ALL_PHASES.join(",")).split(",").map((phase) => phase.trim()));

/**
 * Sizes of every phase. Full: ~15-25 min on 2 cores with four sides per point (sized down from 1,000 events per
 * point and 10,000-event RSS/burst runs when JobSink and the executable joined the throughput phase). Quick: ~2 min,
 * only to prove the harness works.
 */
const settings: Settings = quick
  ? { concurrencies: [1, 4], eventsPerPoint: 100, blockEvents: 50, warmupPerPoint: 10, coldRuns: 1, coldWarmups: 0, rssCheckpoints: [100], rssConcurrency: 16, burstEvents: 200, burstSenders: 200, burstRetryWindowMs: 60_000, pointBudgetMs: 30_000, bigBudgetMs: 60_000, namespaceWaitMs: 0, freshRuns: 1, freshConcurrencies: [4], freshWarmups: 2, freshEvents: 20 }
  : { concurrencies: [1, 4, 16, 64], eventsPerPoint: 400, blockEvents: 100, warmupPerPoint: 50, coldRuns: 5, coldWarmups: 1, rssCheckpoints: [1000, 3000], rssConcurrency: 16, burstEvents: 5000, burstSenders: 1024, burstRetryWindowMs: 300_000, pointBudgetMs: 180_000, bigBudgetMs: 300_000, namespaceWaitMs: 120_000, freshRuns: 5, freshConcurrencies: [1, 16, 64], freshWarmups: 20, freshEvents: 200 };

if (flags["rss-checkpoints"]) settings.rssCheckpoints = flags["rss-checkpoints"].split(",").map(Number).filter((n) => n > 0).sort((a, b) => a - b);
if (flags["fresh-runs"]) settings.freshRuns = Math.max(1, Number(flags["fresh-runs"]));
if (flags.concurrency) settings.concurrencies = flags.concurrency.split(",").map(Number).filter((c) => c > 0);

const runId = Math.random().toString(36).slice(2, 8);
const started = new Date();
const t0 = performance.now();
const profileDir = resolve(repo, "bench/results/profiles", started.toISOString().replace(/[:.]/g, "-"));
const nodeFlags = flags["cpu-prof"] ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [];

const clusterInfo = findCluster(repo);
const cluster = await Cluster.connect(clusterInfo);
const results: Results = {
  schema: 1,
  mode: quick ? "quick" : "full",
  startedAt: started.toISOString(),
  finishedAt: "",
  durationS: 0,
  machine: machine(),
  versions: versions(repo, await cluster.serverVersion()),
  git: gitInfo(repo),
  settings: { ...settings },
  throughput: [],
  coldStart: { runs: [], summary: [], skipped: [] },
  rss: undefined,
  rssVariants: undefined,
  rssSkipped: undefined,
  burst: undefined,
  image: undefined,
  checks: [],
  notes: [],
};
const run = new BenchRun({ repo, cluster, clusterInfo, settings, results, source: `/bench/${runId}`, nodeFlags });
results.checks = run.checks;
results.notes = run.notes;
if (clusterInfo.degraded.length) {
  run.notes.push(`cluster components not running during this run: ${clusterInfo.degraded.join(", ")} (pods were routed and released but not placed on nodes)`);
}
run.log(`${results.mode} run ${runId}: ${results.machine.cpus} cores, ${results.machine.memoryGiB} GiB, node ${results.versions.node}, kubernetes ${results.versions.kubernetes}, commit ${results.git.describe}`);

let interrupted = false;
process.once("SIGINT", () => {
  interrupted = true;
  run.log("interrupted: stopping services and deleting namespaces");
  void run.cleanup().finally(() => process.exit(130));
});

const leftovers = await cluster.leftoverNamespaces();
if (leftovers.length) {
  run.log(`deleting ${leftovers.length} namespace(s) left by an earlier run: ${leftovers.join(", ")}`);
  await Promise.all(leftovers.map((name) => cluster.deleteNamespace(name, settings.namespaceWaitMs)));
}

try {
  if (phases.has("cold")) await coldStartPhase(run);
  if (phases.has("fresh")) await freshPhase(run);
  if (phases.has("throughput")) await throughputPhase(run);
  if (phases.has("rss")) await rssPhase(run);
  if (phases.has("burst")) await burstPhase(run);
  if (phases.has("image")) results.image = await imagePhase(run);
  if (phases.has("correctness")) await correctnessPhase(run);
} catch (error) {
  run.check("the run completed", false, (error as Error).stack ?? String(error));
} finally {
  // Quick runs leave their (already deleted, small) namespaces terminating in the background.
  await run.cleanup();
}

results.finishedAt = new Date().toISOString();
results.durationS = round((performance.now() - t0) / 1000, 1);
results.machine.loadavgEnd = os.loadavg().map((value) => round(value, 2));
const stamp = started.toISOString().replace(/\.\d+Z$/, "Z").replace(/:/g, "-");
// A run of some phases only (--only, --concurrency, --rss-checkpoints, --fresh-runs) is "-partial": never taken for the newest full run.
const partial = phases.size < ALL_PHASES.length || Boolean(flags.concurrency) || Boolean(flags["rss-checkpoints"]) || Boolean(flags["fresh-runs"]);
// The fresh-process phase alone (`--only=fresh`) is kept like the scale and serving runs: fresh-<date>.json, whose
// section BENCHMARKS.md shows when the newest full run has none.
const freshOnly = !quick && phases.size === 1 && phases.has("fresh");
const file = resolve(repo, "bench/results", freshOnly ? `fresh-${stamp}.json` : `${stamp}${quick ? "-quick" : partial ? "-partial" : ""}.json`);
mkdirSync(dirname(file), { recursive: true });
writeFileSync(file, JSON.stringify(results, null, 2) + "\n");
run.log(`wrote ${relative(repo, file)}`);
// Only a complete full run regenerates BENCHMARKS.md and latest.svg; quick runs (CI) leave them alone.
if (!quick && !flags["no-report"] && !interrupted && !partial) {
  for (const written of writeReport(repo)) run.log(`wrote ${relative(repo, written)}`);
}
printSummary(results);
const failed = run.checks.filter((entry) => !entry.ok);
run.log(failed.length ? `${failed.length} of ${run.checks.length} checks FAILED` : `all ${run.checks.length} checks passed in ${results.durationS} s`);
process.exit(failed.length ? 1 : 0);

// ------------------------------------------------------------------------------------------------ summary

function printSummary(r: Results) {
  const lines: string[] = [];
  for (const point of r.throughput) {
    lines.push(`c=${String(point.concurrency).padStart(2)}  baseline ${point.baseline.perSecond}/s p50 ${point.baseline.latencyMs.p50} p99 ${point.baseline.latencyMs.p99} ms | ours (${point.oursRuntime}) ${point.ours.perSecond}/s p50 ${point.ours.latencyMs.p50} p99 ${point.ours.latencyMs.p99} ms, service CPU ${point.ours.cpuMsPerEvent.service} ms/event | ratio ${point.ratio}, added p50 ${point.addedP50Ms} ms, p99 ${point.addedP99Ms} ms`);
    for (const [name, peer] of Object.entries(point.peers ?? {})) {
      lines.push(`      ${name} ${peer.perSecond}/s p50 ${peer.latencyMs.p50} p99 ${peer.latencyMs.p99} ms, own CPU ${peer.cpuMsPerEvent.service ?? peer.cpuMsPerEvent.jobsink} ms/event, ratio ${peer.ratio}`);
    }
  }
  for (const fresh of r.fresh?.summary ?? []) lines.push(`fresh ${fresh.side} c=${fresh.concurrency}: own CPU ${fresh.cpuMsPerEvent.median} ms/event (median of ${fresh.runs}), ${fresh.perSecond}/s`);
  for (const [side, first] of Object.entries(r.fresh?.execToFirstAnswerMs ?? {})) lines.push(`fresh ${side}: exec → first answer ${first.median} ms (median of ${first.n})`);
  for (const cold of r.coldStart.summary) lines.push(`cold start ${cold.runtime}: first answer ${cold.execToFirstAnswerMs.median} ms (median of ${cold.runs}), RSS ${cold.rssAfterFirstEventMiB} MiB`);
  for (const rss of r.rssVariants ?? (r.rss ? [r.rss] : [])) lines.push(`RSS ${rss.variant ?? rss.runtime}: idle ${rss.idleMiB} MiB, ${rss.checkpoints.map((c) => `after ${c.events}: ${c.rssMiB} MiB`).join(", ")}${rss.serviceCpuMsPerEvent === undefined ? "" : `; service CPU ${rss.serviceCpuMsPerEvent} ms/event`}`);
  for (const skipped of r.rssSkipped ?? []) lines.push(`RSS ${skipped.variant}: skipped (${skipped.reason})`);
  if (r.burst) lines.push(`burst ${r.burst.events}: ${r.burst.drainMs} ms, pods ${r.burst.podsCreated}, duplicates ${r.burst.duplicates}, lost ${r.burst.lost}`);
  if (r.image && "binaryMiB" in r.image) lines.push(`image: ${r.image.uncompressedMiB} MiB uncompressed${r.image.gzipMiB ? `, ~${r.image.gzipMiB} MiB gzip` : ""}`);
  process.stderr.write(lines.map((line) => `  ${line}\n`).join(""));
}
