/**
 * `npm run bench` (full, ~10 min) and `npm run bench -- --quick` (~1 min smoke test, what CI runs).
 *
 * Against the local cluster (`npm run cluster -- up`), measures the service (a child process receiving
 * binary-mode CloudEvents over HTTP) against a baseline (provisionClient called in a bare loop in this
 * process: the same Kubernetes API calls with the same HTTP client, nothing else):
 *   1. cold start: exec → first event answered, for Node, Deno and the single executable (if built)
 *   2. events → routed pods per second and per-event latency at several concurrencies, ours and baseline
 *   3. RSS: idle, after 1,000 and after 10,000 events, for the single executable (if built: the memory targets
 *      are judged against it), the Node service, and Node with --max-semi-space-size=2
 *   4. a burst of distinct events: time to drain, pods created, duplicates, lost
 *   5. image size, from dist/build-info.txt if `npm run build` ran
 * Writes bench/results/<date>.json; a full run also regenerates bench/results/latest.svg and BENCHMARKS.md
 * (see bench/report.ts; `node bench/report.ts <file>` renders another run).
 *
 * Exits non-zero when the harness or the service misbehaved: an event lost, a duplicate pod, a pod not routed
 * or still gated, a wrong reply, a crash. Timing never fails the run (CI has no timing assertions).
 *
 * Options: --quick; --only=cold,throughput,rss,burst,image (subset, for debugging); --concurrency=16,64
 * (other concurrency points); --rss-checkpoints=1000,3000 (other RSS checkpoints); --no-report (do not touch BENCHMARKS.md / latest.svg); --cpu-prof (run ours
 * with `node --cpu-prof`, profiles in bench/results/profiles/).
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import { dirname, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { undiciFetcher } from "../src/adapter/node.ts";
import { loadConfig } from "../src/config.ts";
import { kubeconfigClient } from "../src/kube/kubeconfig.ts";
import { provisionerOptions } from "../src/service.ts";
import type { ProvisionerOptions } from "../src/provision/provisioner.ts";
import { Cluster, cpuDelta, cpuSeconds, cpuSnapshot, findCluster, rssMiB, sleep } from "./lib/cluster.ts";
import { type BenchEvent, type LoadResult, makeEvents, runBaseline, runOurs, senderAgent } from "./lib/load.ts";
import { type Runtime, type RunningService, type ServiceCommand, serviceCommand, serviceEnv, startService } from "./lib/service.ts";
import { median, round, summarize } from "./lib/stats.ts";
import { writeReport } from "./report.ts";
import type { BurstResult, Check, ColdRun, ImageResult, Results, RssResult, Side, ThroughputPoint } from "./types.ts";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const { values: flags } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    only: { type: "string" },
    "no-report": { type: "boolean", default: false },
    "cpu-prof": { type: "boolean", default: false },
    concurrency: { type: "string" },
    "rss-checkpoints": { type: "string" },
  },
  strict: true,
});
const quick = flags.quick!;
const phases = new Set((flags.only ?? "cold,throughput,rss,burst,image").split(",").map((phase) => phase.trim()));

/** Sizes of every phase. Full: ~10 min on 2 cores. Quick: ~1 min, only to prove the harness works. */
const settings = quick
  ? { concurrencies: [1, 4], eventsPerPoint: 100, blockEvents: 50, warmupPerPoint: 10, coldRuns: 1, coldWarmups: 0, rssCheckpoints: [100], rssConcurrency: 16, burstEvents: 200, burstSenders: 200, burstRetryWindowMs: 60_000, pointBudgetMs: 30_000, bigBudgetMs: 60_000, namespaceWaitMs: 0 }
  : { concurrencies: [1, 4, 16, 64], eventsPerPoint: 1000, blockEvents: 100, warmupPerPoint: 50, coldRuns: 5, coldWarmups: 1, rssCheckpoints: [1000, 10000], rssConcurrency: 16, burstEvents: 10000, burstSenders: 1024, burstRetryWindowMs: 300_000, pointBudgetMs: 120_000, bigBudgetMs: 300_000, namespaceWaitMs: 180_000 };

if (flags["rss-checkpoints"]) settings.rssCheckpoints = flags["rss-checkpoints"].split(",").map(Number).filter((n) => n > 0).sort((a, b) => a - b);
if (flags.concurrency) settings.concurrencies = flags.concurrency.split(",").map(Number).filter((c) => c > 0);

const runId = Math.random().toString(36).slice(2, 8);
const source = `/bench/${runId}`;
const started = new Date();
const t0 = performance.now();
const log = (message: string) => process.stderr.write(`[bench ${((performance.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${message}\n`);

const checks: Check[] = [];
const notes: string[] = [];
function check(name: string, ok: boolean, detail = "") {
  checks.push({ name, ok, detail });
  if (!ok) log(`CHECK FAILED: ${name}${detail ? `: ${detail}` : ""}`);
}

const profileDir = resolve(repo, "bench/results/profiles", started.toISOString().replace(/[:.]/g, "-"));
const nodeFlags = flags["cpu-prof"] ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [];

const clusterInfo = findCluster(repo);
if (clusterInfo.degraded.length) {
  notes.push(`cluster components not running during this run: ${clusterInfo.degraded.join(", ")} (pods were routed and released but not placed on nodes)`);
}
const cluster = await Cluster.connect(clusterInfo);
const results: Results = {
  schema: 1,
  mode: quick ? "quick" : "full",
  startedAt: started.toISOString(),
  finishedAt: "",
  durationS: 0,
  machine: machine(),
  versions: await versions(),
  git: gitInfo(),
  settings,
  throughput: [],
  coldStart: { runs: [], summary: [], skipped: [] },
  rss: undefined,
  rssVariants: undefined,
  rssSkipped: undefined,
  burst: undefined,
  image: undefined,
  checks,
  notes,
};
log(`${results.mode} run ${runId}: ${results.machine.cpus} cores, ${results.machine.memoryGiB} GiB, node ${results.versions.node}, kubernetes ${results.versions.kubernetes}, commit ${results.git.describe}`);

/** Quick runs do not wait for namespaces to go (a few hundred pods hardly disturb the next phase). */
const deleting: string[] = [];

const live = new Set<RunningService>();
const liveNamespaces = new Set<string>();
let interrupted = false;
process.once("SIGINT", () => {
  interrupted = true;
  log("interrupted: stopping services and deleting namespaces");
  void cleanup().finally(() => process.exit(130));
});

async function cleanup() {
  await Promise.all([...live].map((service) => service.stop().catch(() => null)));
  await Promise.all([...liveNamespaces].map((name) => cluster.deleteNamespace(name, 0).catch(() => null)));
}

const leftovers = await cluster.leftoverNamespaces();
if (leftovers.length) {
  log(`deleting ${leftovers.length} namespace(s) left by an earlier run: ${leftovers.join(", ")}`);
  await Promise.all(leftovers.map((name) => cluster.deleteNamespace(name, settings.namespaceWaitMs)));
}

try {
  if (phases.has("cold")) await coldStartPhase();
  if (phases.has("throughput")) await throughputPhase();
  if (phases.has("rss")) await rssPhase();
  if (phases.has("burst")) await burstPhase();
  if (phases.has("image")) results.image = await imagePhase();
} catch (error) {
  check("the run completed", false, (error as Error).stack ?? String(error));
} finally {
  await cleanup();
  // Quick runs leave their (already deleted, small) namespaces terminating in the background.
}

results.finishedAt = new Date().toISOString();
results.durationS = round((performance.now() - t0) / 1000, 1);
results.machine.loadavgEnd = os.loadavg().map((value) => round(value, 2));
const stamp = started.toISOString().replace(/\.\d+Z$/, "Z").replace(/:/g, "-");
// A run of some phases only (--only, --concurrency, --rss-checkpoints) is "-partial": never taken for the newest full run.
const partial = phases.size < 5 || Boolean(flags.concurrency) || Boolean(flags["rss-checkpoints"]);
const file = resolve(repo, "bench/results", `${stamp}${quick ? "-quick" : partial ? "-partial" : ""}.json`);
mkdirSync(dirname(file), { recursive: true });
writeFileSync(file, JSON.stringify(results, null, 2) + "\n");
log(`wrote ${relative(repo, file)}`);
// Only a complete full run regenerates BENCHMARKS.md and latest.svg; quick runs (CI) leave them alone.
if (!quick && !flags["no-report"] && !interrupted && phases.size === 5 && !flags.concurrency && !flags["rss-checkpoints"]) {
  for (const written of writeReport(repo)) log(`wrote ${relative(repo, written)}`);
}
printSummary(results);
const failed = checks.filter((entry) => !entry.ok);
log(failed.length ? `${failed.length} of ${checks.length} checks FAILED` : `all ${checks.length} checks passed in ${results.durationS} s`);
process.exit(failed.length ? 1 : 0);

// ------------------------------------------------------------------------------------------------ phases

/** A fresh routed namespace for one phase, deleted (and waited for, bounded) afterwards. */
async function inNamespace<T>(prefix: string, body: (namespace: string) => Promise<T>): Promise<T> {
  const namespace = await cluster.createRoutedNamespace(`bench-${prefix}`);
  liveNamespaces.add(namespace);
  let value: T;
  try {
    value = await body(namespace);
  } finally {
    const { goneAfterMs } = await cluster.deleteNamespace(namespace, settings.namespaceWaitMs);
    liveNamespaces.delete(namespace);
    if (settings.namespaceWaitMs === 0) deleting.push(namespace);
    else if (goneAfterMs === null) notes.push(`namespace ${namespace} was not gone ${settings.namespaceWaitMs / 1000} s after its deletion; the next phase overlapped its teardown`);
    else log(`  namespace ${namespace} deleted in ${(goneAfterMs / 1000).toFixed(1)} s`);
  }
  return value;
}

async function startOurs(namespace: string, runtime: Runtime = "node"): Promise<RunningService> {
  const command = serviceCommand(repo, runtime, runtime === "node" ? nodeFlags : []);
  if (!command) throw new Error(`no ${runtime} command`);
  const service = await startService(command, serviceEnv({ KUBECONFIG: clusterInfo.kubeconfig, CLIENT_NAMESPACE: namespace }));
  live.add(service);
  return service;
}

async function stopOurs(service: RunningService) {
  const code = await service.stop();
  live.delete(service);
  check(`${service.runtime} service exited cleanly on SIGTERM`, code === 0, `exit code ${code}\n${service.tail()}`);
}

/** The provisioner as `createService` builds it from the same (default) configuration: the same pod, the same calls. */
async function baselineProvisioner(namespace: string): Promise<ProvisionerOptions> {
  const loaded = loadConfig([], { KUBECONFIG: clusterInfo.kubeconfig, CLIENT_NAMESPACE: namespace });
  if (!("config" in loaded)) throw new Error("unexpected --help");
  const config = loaded.config;
  const kube = await kubeconfigClient(clusterInfo.kubeconfig, undiciFetcher, { timeoutMs: config["kube-timeout-ms"] });
  // Exactly the service's pod settings. The service adds `admit` (per-gateway capacity) only when
  // --max-clients-per-gateway > 0; the default is 0.
  return provisionerOptions(config, kube);
}

/** Every sent event has exactly one routed, released pod in the namespace, and there is no other pod. */
async function verifyPods(what: string, namespace: string, sent: BenchEvent[]) {
  const pods = await cluster.clientPods(namespace);
  const expected = new Map(sent.map((event) => [event.request.id, event]));
  const seen = new Map<string, number>();
  let unexpected = 0;
  let gated = 0;
  let unrouted = 0;
  for (const pod of pods) {
    const event = pod.requestId === undefined ? undefined : expected.get(pod.requestId);
    if (!event || pod.requestSource !== source || pod.name !== event.podName) unexpected++;
    else seen.set(pod.requestId!, (seen.get(pod.requestId!) ?? 0) + 1);
    if (pod.gated) gated++;
    if (!pod.routed) unrouted++;
  }
  const duplicates = [...seen.values()].reduce((sum, count) => sum + count - 1, 0) + unexpected;
  const missing = sent.length - seen.size;
  check(`${what}: one routed, released pod per event`, pods.length === sent.length && duplicates === 0 && missing === 0 && gated === 0 && unrouted === 0,
    `events ${sent.length}, pods ${pods.length}, missing ${missing}, duplicates ${duplicates}, still gated ${gated}, not routed ${unrouted}`);
  return { pods: pods.length, duplicates, missing, gated, unrouted, requestIds: [...seen.keys()] };
}

function checkLoad(what: string, result: LoadResult) {
  check(`${what}: every event answered done`, result.done === result.events && result.failed === 0 && result.lost === 0 && result.unsent === 0,
    `events ${result.events}, done ${result.done}, failed ${result.failed}, lost ${result.lost}, unsent ${result.unsent}${result.errors.length ? `; e.g. ${result.errors.slice(0, 3).join(" | ")}` : ""}`);
}

async function coldStartPhase() {
  log("cold start: exec → first event answered");
  const runtimes: Runtime[] = ["node", "deno", "exe"];
  const commands = runtimes.map((runtime) => ({ runtime, command: serviceCommand(repo, runtime) }));
  for (const { runtime, command } of commands) {
    if (!command) {
      const reason = runtime === "exe"
        ? "dist/podgateway-provisioner does not exist: run `npm run build` first"
        : `node_modules/.bin/${runtime} is missing: run \`npm ci\``;
      results.coldStart.skipped.push({ runtime, reason });
      log(`cold start: skipping ${runtime}: ${reason}`);
    }
  }
  const available = commands.filter((entry) => entry.command);
  await inNamespace("cold", async (namespace) => {
    const answered: BenchEvent[] = [];
    const total = settings.coldWarmups + settings.coldRuns;
    // Interleaved (node, deno, exe, node, ...) so drift in the machine's load hits every runtime alike.
    for (let attempt = 0; attempt < total; attempt++) {
      for (const { runtime, command } of available) {
        const [event] = makeEvents(source, `cold-${runtime}-${attempt}`, 1);
        const warmup = attempt < settings.coldWarmups;
        const agent = senderAgent(1);
        const service = await startService(command!, serviceEnv({ KUBECONFIG: clusterInfo.kubeconfig, CLIENT_NAMESPACE: namespace }));
        live.add(service);
        try {
          // One attempt: the first answer is what we time, and it must be the done event.
          const result = await runOurs(service.url, agent, [event!], 1, settings.pointBudgetMs, 1);
          const answeredAt = performance.now();
          const ok = result.done === 1;
          if (ok) answered.push(event!);
          checkLoad(`cold start ${runtime} #${attempt}`, result);
          const memory = rssMiB(service.pid);
          if (!warmup) {
            const run: ColdRun = {
              runtime,
              ok,
              error: ok ? undefined : result.errors.join("; ").slice(0, 500),
              execToListeningMs: round(service.listeningAt - service.spawnedAt, 1),
              execToFirstAnswerMs: round(answeredAt - service.spawnedAt, 1),
              firstEventMs: round(result.latencyMs[0]!, 1),
              rssAfterFirstEventMiB: round(memory.rss, 1),
            };
            results.coldStart.runs.push(run);
            log(`cold start ${runtime}: listening ${run.execToListeningMs} ms, first answer ${run.execToFirstAnswerMs} ms${ok ? "" : " (NOT done)"}, RSS ${run.rssAfterFirstEventMiB} MiB`);
          }
        } finally {
          await agent.close();
          await stopOurs(service);
        }
      }
    }
    await verifyPods("cold start", namespace, answered);
  });
  for (const { runtime } of available) {
    const all = results.coldStart.runs.filter((run) => run.runtime === runtime);
    const runs = all.filter((run) => run.ok);
    const first = summarize(runs.map((run) => run.execToFirstAnswerMs));
    const listen = summarize(all.map((run) => run.execToListeningMs));
    const rss = summarize(all.map((run) => run.rssAfterFirstEventMiB));
    results.coldStart.summary.push({
      runtime,
      runs: all.length,
      failedRuns: all.length - runs.length,
      firstError: all.find((run) => !run.ok)?.error,
      execToFirstAnswerMs: { median: round(first.p50, 1), min: round(first.min, 1), max: round(first.max, 1) },
      execToListeningMs: { median: round(listen.p50, 1), min: round(listen.min, 1), max: round(listen.max, 1) },
      rssAfterFirstEventMiB: round(rss.p50, 1),
    });
  }
}

/**
 * One concurrency point: baseline and ours each get a fresh namespace, warm up, then run in alternating
 * blocks (baseline, ours, ours, baseline, ...) so that whatever else the shared machine is doing hits both
 * sides alike. Throughput = answered events / summed block wall time; latency over all timed events; the
 * block-by-block differences of the medians give a paired estimate of the added latency.
 */
async function throughputPhase() {
  for (const concurrency of settings.concurrencies) {
    const blockSize = Math.max(settings.blockEvents, 4 * concurrency);
    const blocks = Math.max(2, Math.round(settings.eventsPerPoint / blockSize));
    log(`throughput: concurrency ${concurrency}, ${settings.warmupPerPoint} warm-up + ${blocks} alternating blocks of ${blockSize} events per side`);
    const point = await throughputPoint(concurrency, blocks, blockSize);
    results.throughput.push(point);
    log(`  baseline ${point.baseline.perSecond}/s p50 ${point.baseline.latencyMs.p50} p99 ${point.baseline.latencyMs.p99} ms | ours ${point.ours.perSecond}/s p50 ${point.ours.latencyMs.p50} p99 ${point.ours.latencyMs.p99} ms`);
    log(`  ours/baseline ${point.ratio}, added p50 ${point.addedP50Ms} ms (paired by block: ${point.pairedAddedP50Ms} ms), p99 ${point.addedP99Ms} ms`);
  }
}

type SideName = "baseline" | "ours";

async function throughputPoint(concurrency: number, blocks: number, blockSize: number): Promise<ThroughputPoint> {
  const names: Record<SideName, string> = {
    baseline: await cluster.createRoutedNamespace(`bench-tp-baseline-c${concurrency}`),
    ours: await cluster.createRoutedNamespace(`bench-tp-ours-c${concurrency}`),
  };
  Object.values(names).forEach((name) => liveNamespaces.add(name));
  let service: RunningService | undefined;
  const agent = senderAgent(concurrency);
  try {
    const provisioner = await baselineProvisioner(names.baseline);
    service = await startOurs(names.ours);
    const url = service.url;
    const run = (side: SideName, events: BenchEvent[]) =>
      side === "baseline" ? runBaseline(provisioner, events, concurrency, settings.pointBudgetMs) : runOurs(url, agent, events, concurrency, settings.pointBudgetMs);

    const sent: Record<SideName, BenchEvent[]> = { baseline: [], ours: [] };
    for (const side of ["baseline", "ours"] as const) {
      const warmup = makeEvents(source, `tp-${side}-c${concurrency}-warm`, settings.warmupPerPoint);
      sent[side].push(...warmup);
      checkLoad(`${side} c=${concurrency} warm-up`, await run(side, warmup));
    }

    const acc: Record<SideName, { results: LoadResult[]; cpu: ReturnType<typeof cpuDelta>[]; calls: Record<string, number>; blockP50: number[] }> = {
      baseline: { results: [], cpu: [], calls: {}, blockP50: [] },
      ours: { results: [], cpu: [], calls: {}, blockP50: [] },
    };
    const clusterPids = cluster.componentPids();
    // The idle service's few timer ticks during baseline blocks count as "other", not as baseline cost.
    const pidsOf = (side: SideName) => (side === "ours" ? { ...clusterPids, service: service!.pid } : clusterPids);
    for (let block = 0; block < blocks; block++) {
      const order: SideName[] = block % 2 === 0 ? ["baseline", "ours"] : ["ours", "baseline"];
      for (const side of order) {
        const events = makeEvents(source, `tp-${side}-c${concurrency}-b${block}`, blockSize);
        sent[side].push(...events);
        // API request counts cost the API server a 3 MB /metrics answer: taken around each side's first block only.
        const counting = block < 2 && Object.keys(acc[side].calls).length === 0;
        const callsBefore = counting ? await cluster.apiRequestCounts() : undefined;
        const before = cpuSnapshot(pidsOf(side));
        const result = await run(side, events);
        acc[side].cpu.push(cpuDelta(before, cpuSnapshot(pidsOf(side))));
        if (callsBefore) acc[side].calls = perEvent(callsBefore, await cluster.apiRequestCounts(), result.events - result.unsent);
        acc[side].results.push(result);
        acc[side].blockP50.push(summarize([...result.latencyMs].filter(Number.isFinite)).p50);
        checkLoad(`${side} c=${concurrency} block ${block}`, result);
      }
    }
    const disturbed = restarted(clusterPids, `concurrency ${concurrency}`);
    if (service) {
      const logged = service.outcomes.done ?? 0;
      check(`ours c=${concurrency}: the service logged one done per event`, logged === sent.ours.length, `logged ${JSON.stringify(service.outcomes)}, sent ${sent.ours.length}`);
    }
    await agent.close();
    await stopOurs(service);
    service = undefined;
    for (const side of ["baseline", "ours"] as const) await verifyPods(`${side} c=${concurrency}`, names[side], sent[side]);

    const sides = {} as Record<SideName, Side>;
    for (const side of ["baseline", "ours"] as const) {
      const merged = mergeResults(acc[side].results);
      const cpu = mergeCpu(acc[side].cpu);
      sides[side] = { ...sideOf(merged, cpu), apiCallsPerEvent: acc[side].calls, ...(disturbed ? { disturbed } : {}) };
    }
    const differences = acc.ours.blockP50.map((p50, i) => p50 - acc.baseline.blockP50[i]!);
    return {
      concurrency,
      blocks,
      blockSize,
      baseline: sides.baseline,
      ours: sides.ours,
      ratio: round(sides.ours.perSecond / sides.baseline.perSecond, 3),
      addedP50Ms: round(sides.ours.latencyMs.p50 - sides.baseline.latencyMs.p50, 2),
      addedP99Ms: round(sides.ours.latencyMs.p99 - sides.baseline.latencyMs.p99, 2),
      pairedAddedP50Ms: round(median(differences), 2),
      blockAddedP50Ms: differences.map((d) => round(d, 2)),
    };
  } finally {
    await agent.close().catch(() => {});
    if (service) await stopOurs(service);
    const gone = await Promise.all(Object.values(names).map((name) => cluster.deleteNamespace(name, settings.namespaceWaitMs)));
    Object.values(names).forEach((name, i) => {
      liveNamespaces.delete(name);
      if (settings.namespaceWaitMs === 0) deleting.push(name);
      else if (gone[i]!.goneAfterMs === null) notes.push(`namespace ${name} was not gone ${settings.namespaceWaitMs / 1000} s after its deletion`);
    });
  }
}

function mergeResults(parts: LoadResult[]): LoadResult {
  const latencies = new Float64Array(parts.reduce((sum, part) => sum + part.latencyMs.length, 0));
  const answered = new Uint8Array(latencies.length);
  let offset = 0;
  for (const part of parts) {
    latencies.set(part.latencyMs, offset);
    answered.set(part.answered, offset);
    offset += part.latencyMs.length;
  }
  const retries: Record<string, number> = {};
  for (const part of parts) for (const [key, count] of Object.entries(part.retries)) retries[key] = (retries[key] ?? 0) + count;
  const sum = (pick: (part: LoadResult) => number) => parts.reduce((total, part) => total + pick(part), 0);
  return {
    events: sum((p) => p.events),
    concurrency: parts[0]?.concurrency ?? 0,
    done: sum((p) => p.done),
    failed: sum((p) => p.failed),
    lost: sum((p) => p.lost),
    unsent: sum((p) => p.unsent),
    retries,
    wallMs: sum((p) => p.wallMs),
    latencyMs: latencies,
    answered,
    maxAttemptsUsed: Math.max(0, ...parts.map((p) => p.maxAttemptsUsed)),
    errors: parts.flatMap((p) => p.errors).slice(0, 10),
  };
}

function mergeCpu(parts: ReturnType<typeof cpuDelta>[]): ReturnType<typeof cpuDelta> {
  const processes: Record<string, number> = {};
  for (const part of parts) for (const [name, used] of Object.entries(part.processes)) processes[name] = (processes[name] ?? 0) + used;
  return { processes, other: parts.reduce((sum, part) => sum + part.other, 0) };
}

/** Whether a cluster component was restarted (by someone else: e.g. a fault-injection test) during a measurement. */
function restarted(pids: Record<string, number>, what: string): boolean {
  const now = cluster.componentPids();
  const changed = Object.entries(pids).filter(([name, pid]) => name !== "service" && now[name] !== pid).map(([name]) => name);
  if (changed.length) notes.push(`${what}: ${changed.join(", ")} restarted during the measurement (not by the benchmark); its numbers are disturbed`);
  return changed.length > 0;
}

/** API server requests per event between two apiserver_request_total snapshots (only those made at least once per 100 events). */
function perEvent(before: Record<string, number>, after: Record<string, number>, events: number): Record<string, number> {
  const calls: Record<string, number> = {};
  for (const [key, value] of Object.entries(after)) {
    const per = (value - (before[key] ?? 0)) / Math.max(1, events);
    if (per >= 0.01) calls[key] = round(per, 2);
  }
  return calls;
}

function sideOf(result: LoadResult, cpu: ReturnType<typeof cpuDelta>): Side {
  const latency = summarize([...result.latencyMs].filter(Number.isFinite));
  const sent = Math.max(1, result.events - result.unsent);
  const seconds = result.wallMs / 1000;
  const cpuMsPerEvent: Record<string, number> = {};
  for (const [name, used] of Object.entries(cpu.processes)) cpuMsPerEvent[name] = round((used * 1000) / sent, 3);
  return {
    events: result.events,
    done: result.done,
    failed: result.failed,
    lost: result.lost,
    unsent: result.unsent,
    retries: result.retries,
    wallMs: round(result.wallMs, 1),
    perSecond: round(result.done / seconds, 1),
    latencyMs: { n: latency.n, min: round(latency.min, 2), p50: round(latency.p50, 2), p90: round(latency.p90, 2), p99: round(latency.p99, 2), max: round(latency.max, 2), mean: round(latency.mean, 2) },
    cpuMsPerEvent,
    cpuUtilisation: round(Object.values(cpu.processes).reduce((sum, used) => sum + used, 0) / seconds, 2),
    otherCpuUtilisation: round(cpu.other / seconds, 2),
    apiCallsPerEvent: {},
  };
}

/**
 * The ways the service can run whose memory we compare: the Node service as `npm start` runs it, the same with
 * a 2 MiB semi-space (V8's young generation; a candidate flag for `npm start`), and the shipped single
 * executable, which the memory targets are judged against. Skipped variants come back with a reason.
 */
function rssVariants(): { variants: { name: string; command: ServiceCommand }[]; skipped: { variant: string; reason: string }[] } {
  const variants: { name: string; command: ServiceCommand }[] = [];
  const skipped: { variant: string; reason: string }[] = [];
  const exe = serviceCommand(repo, "exe");
  if (exe) variants.push({ name: "exe", command: exe });
  else skipped.push({ variant: "exe", reason: "dist/podgateway-provisioner does not exist: run `npm run build` first" });
  variants.push({ name: "node", command: serviceCommand(repo, "node", nodeFlags)! });
  variants.push({ name: "node --max-semi-space-size=2", command: serviceCommand(repo, "node", ["--max-semi-space-size=2", ...nodeFlags])! });
  return { variants, skipped };
}

async function rssPhase() {
  const { variants, skipped } = rssVariants();
  results.rssSkipped = skipped;
  results.rssVariants = [];
  for (const entry of skipped) log(`RSS: skipping ${entry.variant}: ${entry.reason}`);
  for (const variant of variants) {
    const measured = await rssOf(variant.name, variant.command);
    results.rssVariants.push(measured);
    if (variant.name === "node") results.rss = measured; // schema 1 field: the Node service, as in older results
  }
}

async function rssOf(name: string, command: ServiceCommand): Promise<RssResult> {
  log(`RSS of ${name}: idle, then after ${settings.rssCheckpoints.join(" and ")} events`);
  return await inNamespace("rss", async (namespace) => {
    const service = await startService(command, serviceEnv({ KUBECONFIG: clusterInfo.kubeconfig, CLIENT_NAMESPACE: namespace }));
    live.add(service);
    const agent = senderAgent(settings.rssConcurrency);
    const sent: BenchEvent[] = [];
    const samples: { events: number; rssMiB: number }[] = [];
    const pids = cluster.componentPids();
    let rss: RssResult;
    try {
      await sleep(3000);
      const idle = rssMiB(service.pid);
      const cpuAtIdle = cpuSeconds(service.pid);
      samples.push({ events: 0, rssMiB: round(idle.rss, 1) });
      log(`  idle: ${idle.rss.toFixed(1)} MiB`);
      const checkpoints: { events: number; rssMiB: number }[] = [];
      let total = 0;
      let sampler: NodeJS.Timeout | undefined;
      for (const checkpoint of settings.rssCheckpoints) {
        const events = makeEvents(source, `rss-${service.pid}-${total}`, checkpoint - total);
        sent.push(...events);
        const base = total;
        sampler = setInterval(() => {
          const done = (service.outcomes.done ?? 0);
          samples.push({ events: Math.min(done, base + events.length), rssMiB: round(rssMiB(service.pid).rss, 1) });
        }, 1000);
        const result = await runOurs(service.url, agent, events, settings.rssConcurrency, settings.bigBudgetMs);
        clearInterval(sampler);
        checkLoad(`RSS phase (${name}) up to ${checkpoint} events`, result);
        total = checkpoint;
        await sleep(2000);
        const memory = rssMiB(service.pid);
        checkpoints.push({ events: checkpoint, rssMiB: round(memory.rss, 1) });
        samples.push({ events: checkpoint, rssMiB: round(memory.rss, 1) });
        log(`  after ${checkpoint} events: ${memory.rss.toFixed(1)} MiB (peak so far ${memory.hwm.toFixed(1)} MiB)`);
      }
      // The service's own CPU over all the events (the 2 s pauses after each checkpoint included: idle, ~0).
      const cpuMsPerEvent = round(((cpuSeconds(service.pid) - cpuAtIdle) * 1000) / Math.max(1, total), 3);
      restarted(pids, `RSS phase (${name})`);
      const peak = rssMiB(service.pid).hwm;
      const first = checkpoints[0];
      const last = checkpoints[checkpoints.length - 1];
      rss = {
        runtime: command.runtime,
        variant: name,
        command: commandLine(command),
        idleMiB: round(idle.rss, 1),
        checkpoints,
        peakMiB: round(peak, 1),
        changeFirstToLastPct: first && last && checkpoints.length > 1 ? round(((last.rssMiB - first.rssMiB) / first.rssMiB) * 100, 1) : null,
        serviceCpuMsPerEvent: cpuMsPerEvent,
        samples,
      };
    } finally {
      await agent.close();
      await stopOurs(service);
    }
    await verifyPods(`RSS phase (${name})`, namespace, sent);
    return rss;
  });
}

/** `node --flag src/main/node.ts`, `dist/podgateway-provisioner`: paths relative to the repository. */
function commandLine(command: ServiceCommand): string {
  const inRepo = (path: string) => (path.startsWith(repo + "/") ? relative(repo, path) : path);
  return [command.runtime === "node" ? "node" : inRepo(command.command), ...command.args.map(inRepo)].join(" ");
}

async function burstPhase() {
  log(`burst: ${settings.burstEvents} distinct events released at once to ${settings.burstSenders} concurrent senders`);
  await inNamespace("burst", async (namespace) => {
    const service = await startOurs(namespace);
    const agent = senderAgent(settings.burstSenders);
    const events = makeEvents(source, "burst", settings.burstEvents);
    let result: LoadResult;
    let cpu: ReturnType<typeof cpuDelta>;
    try {
      const pids = { ...cluster.componentPids(), service: service.pid };
      const before = cpuSnapshot(pids);
      // Like a broker: keep redelivering (honouring Retry-After) for up to the retry window, however many 429s.
      result = await runOurs(service.url, agent, events, settings.burstSenders, settings.bigBudgetMs, Number.MAX_SAFE_INTEGER, settings.burstRetryWindowMs);
      cpu = cpuDelta(before, cpuSnapshot(pids));
      restarted(pids, "burst");
    } finally {
      await agent.close();
      await stopOurs(service);
    }
    checkLoad("burst", result);
    const pods = await verifyPods("burst", namespace, events);
    const withPod = new Set(pods.requestIds);
    const lost = events.filter((event, index) => !result.answered[index] || !withPod.has(event.request.id)).length;
    const side = sideOf(result, cpu);
    const burst: BurstResult = {
      events: result.events,
      senders: settings.burstSenders,
      drainMs: side.wallMs,
      perSecond: side.perSecond,
      done: result.done,
      podsCreated: pods.pods,
      duplicates: pods.duplicates,
      lost,
      retries: result.retries,
      maxAttempts: result.maxAttemptsUsed,
      retryWindowS: settings.burstRetryWindowMs / 1000,
      latencyMs: side.latencyMs,
      cpuMsPerEvent: side.cpuMsPerEvent,
    };
    results.burst = burst;
    log(`  drained in ${burst.drainMs} ms (${burst.perSecond}/s), pods ${burst.podsCreated}, duplicates ${burst.duplicates}, lost ${burst.lost}, retries ${JSON.stringify(burst.retries)}`);
  });
}

async function imagePhase(): Promise<ImageResult> {
  const info = resolve(repo, "dist/build-info.txt");
  const binary = resolve(repo, "dist/podgateway-provisioner");
  if (!existsSync(info) || !existsSync(binary)) {
    return { skipped: "dist/build-info.txt or dist/podgateway-provisioner missing: run `npm run build` first" };
  }
  const text = readFileSync(info, "utf8");
  const rootfs = [...text.matchAll(/^\s+(\/\S+) (\d+)$/gm)].map((match) => ({ path: match[1]!, bytes: Number(match[2]) }));
  const binaryBytes = Number(/^size: (\d+) bytes/m.exec(text)?.[1] ?? Number.NaN);
  const rootfsBytes = rootfs.reduce((sum, file) => sum + file.bytes, 0);
  let gzipBytes: number | null = null;
  if (!quick) {
    // What a registry would store for the two layers (COPY rootfs, COPY binary), roughly: tar | gzip -6.
    try {
      const out = execFileSync("bash", ["-c", 'tar -C dist -cf - rootfs podgateway-provisioner | gzip -6 | wc -c'], { cwd: repo, encoding: "utf8", timeout: 120_000 });
      gzipBytes = Number(out.trim());
    } catch (error) {
      notes.push(`image: gzip estimate failed: ${(error as Error).message}`);
    }
  }
  return {
    runtime: /^runtime: (\S+)/m.exec(text)?.[1] ?? "unknown",
    builtFrom: /^git: (\S+)/m.exec(text)?.[1] ?? "unknown",
    binaryMiB: round(binaryBytes / 2 ** 20, 1),
    rootfsMiB: round(rootfsBytes / 2 ** 20, 2),
    uncompressedMiB: round((binaryBytes + rootfsBytes) / 2 ** 20, 1),
    gzipMiB: gzipBytes === null ? null : round(gzipBytes / 2 ** 20, 1),
    pushed: await pushedImage(),
    note: "Sizes of the Dockerfile's inputs (FROM scratch + dist/rootfs + the executable); \"pushed\" is the image that `npm run publish:local` last pushed to the local registry, as its manifest states.",
  };
}

/** The image `scripts/publish-local.sh` last pushed (it writes .cache/publish-local.env): its manifest's sizes, from the local registry. */
async function pushedImage(): Promise<{ ref: string; digest: string; compressedMiB: number; source: string } | null> {
  const file = resolve(repo, ".cache/publish-local.env");
  if (!existsSync(file)) return null;
  const env = Object.fromEntries(readFileSync(file, "utf8").split("\n").map((line) => line.split("=")).filter((pair) => pair.length === 2));
  const ref = env.IMAGE;
  const digest = env.IMAGE_DIGEST;
  if (!ref || !digest) return null;
  const [registry, ...rest] = ref.split("/");
  const name = rest.join("/").replace(/:[^:]*$/, "");
  try {
    const response = await fetch(`http://${registry}/v2/${name}/manifests/${digest}`, {
      headers: { accept: "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json" },
      signal: AbortSignal.timeout(3000),
    });
    if (response.ok) {
      const manifest = (await response.json()) as { config?: { size?: number }; layers?: { size?: number }[] };
      const bytes = (manifest.config?.size ?? 0) + (manifest.layers ?? []).reduce((sum, layer) => sum + (layer.size ?? 0), 0);
      return { ref, digest, compressedMiB: round(bytes / 2 ** 20, 1), source: "registry manifest" };
    }
  } catch {
    // the local registry is not running: fall back to what the script recorded
  }
  const recorded = Number(env.IMAGE_COMPRESSED_BYTES);
  return Number.isFinite(recorded) && recorded > 0 ? { ref, digest, compressedMiB: round(recorded / 2 ** 20, 1), source: ".cache/publish-local.env" } : null;
}

// ------------------------------------------------------------------------------------------------ facts

function machine(): Results["machine"] {
  const cpus = os.cpus();
  return {
    cpus: os.availableParallelism(),
    cpuModel: cpus[0]?.model.trim() ?? "unknown",
    memoryGiB: round(os.totalmem() / 2 ** 30, 1),
    kernel: `${os.type()} ${os.release()}`,
    loadavgStart: os.loadavg().map((value) => round(value, 2)),
    loadavgEnd: [],
  };
}

async function versions(): Promise<Results["versions"]> {
  const tool = (name: string, args: string[]) => {
    try {
      return execFileSync(resolve(repo, "node_modules/.bin", name), args, { encoding: "utf8", timeout: 30_000 }).split("\n")[0]!.trim();
    } catch {
      return "missing";
    }
  };
  const pkg = (name: string) => {
    try {
      return (JSON.parse(readFileSync(resolve(repo, "node_modules", name, "package.json"), "utf8")) as { version: string }).version;
    } catch {
      return "missing";
    }
  };
  return {
    node: process.version,
    deno: tool("deno", ["--version"]).replace(/^deno (\S+).*$/, "$1"),
    bun: tool("bun", ["--version"]),
    kubernetes: await cluster.serverVersion(),
    hono: pkg("hono"),
    "@hono/node-server": pkg("@hono/node-server"),
    undici: pkg("undici"),
    cloudevents: pkg("cloudevents"),
  };
}

function gitInfo(): Results["git"] {
  const git = (...args: string[]) => {
    try {
      return execFileSync("git", args, { cwd: repo, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trimEnd();
    } catch {
      return "";
    }
  };
  const changed = git("status", "--porcelain", "--", "src", "package.json", "package-lock.json").split("\n").filter(Boolean).map((line) => line.slice(3));
  return { commit: git("rev-parse", "HEAD") || "unknown", describe: git("describe", "--always", "--dirty") || "unknown", serviceFilesChanged: changed };
}

function printSummary(r: Results) {
  const lines: string[] = [];
  for (const point of r.throughput) {
    lines.push(`c=${String(point.concurrency).padStart(2)}  baseline ${point.baseline.perSecond}/s p50 ${point.baseline.latencyMs.p50} p99 ${point.baseline.latencyMs.p99} ms | ours ${point.ours.perSecond}/s p50 ${point.ours.latencyMs.p50} p99 ${point.ours.latencyMs.p99} ms | ratio ${point.ratio}, added p50 ${point.addedP50Ms} ms, p99 ${point.addedP99Ms} ms`);
  }
  for (const cold of r.coldStart.summary) lines.push(`cold start ${cold.runtime}: first answer ${cold.execToFirstAnswerMs.median} ms (median of ${cold.runs}), RSS ${cold.rssAfterFirstEventMiB} MiB`);
  for (const rss of r.rssVariants ?? (r.rss ? [r.rss] : [])) lines.push(`RSS ${rss.variant ?? rss.runtime}: idle ${rss.idleMiB} MiB, ${rss.checkpoints.map((c) => `after ${c.events}: ${c.rssMiB} MiB`).join(", ")}${rss.serviceCpuMsPerEvent === undefined ? "" : `; service CPU ${rss.serviceCpuMsPerEvent} ms/event`}`);
  for (const skipped of r.rssSkipped ?? []) lines.push(`RSS ${skipped.variant}: skipped (${skipped.reason})`);
  if (r.burst) lines.push(`burst ${r.burst.events}: ${r.burst.drainMs} ms, pods ${r.burst.podsCreated}, duplicates ${r.burst.duplicates}, lost ${r.burst.lost}`);
  if (r.image && "binaryMiB" in r.image) lines.push(`image: ${r.image.uncompressedMiB} MiB uncompressed${r.image.gzipMiB ? `, ~${r.image.gzipMiB} MiB gzip` : ""}`);
  process.stderr.write(lines.map((line) => `  ${line}\n`).join(""));
}
