/**
 * Turns a results file into BENCHMARKS.md and bench/results/latest.svg (hand-written SVG, no plotting library).
 *
 *   node bench/report.ts [bench/results/<file>.json]
 *
 * Without an argument it uses the newest full run (the newest quick run if there is no full one).
 * The hand-written analysis in bench/analysis.md is copied into BENCHMARKS.md as it is.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { FreshResult, Results, ScaleResults, Side, ThroughputPoint } from "./types.ts";

/** Newest results file: full runs first; file names are ISO timestamps, so names sort by time. */
export function latestResults(repo: string): string | undefined {
  const dir = resolve(repo, "bench/results");
  if (!existsSync(dir)) return undefined;
  const files = readdirSync(dir).filter((name) => /^\d{4}-\d\d-\d\dT.*\.json$/.test(name)).sort();
  const full = files.filter((name) => !name.endsWith("-quick.json") && !name.endsWith("-partial.json"));
  const chosen = full[full.length - 1] ?? files[files.length - 1];
  return chosen ? resolve(dir, chosen) : undefined;
}

/**
 * Keeps a bench mode's results (serving, real-node, warm-pool) as bench/results/<kind>-<stamp>.json, the newest of
 * which its BENCHMARKS.md section is made from, and regenerates BENCHMARKS.md.
 */
export function saveResults(repo: string, kind: string, stamp: string, results: unknown): void {
  const dir = resolve(repo, "bench/results");
  mkdirSync(dir, { recursive: true });
  const file = resolve(dir, `${kind}-${stamp}.json`);
  writeFileSync(file, JSON.stringify(results, null, 2) + "\n");
  console.log(`wrote ${relative(repo, file)}`);
  writeReport(repo);
}

/** Regenerates BENCHMARKS.md and latest.svg from `file` (default: {@link latestResults}); returns the paths written. */
export function writeReport(repo: string, file = latestResults(repo)): string[] {
  if (!file) throw new Error("no results in bench/results: run `npm run bench` first");
  const results = JSON.parse(readFileSync(file, "utf8")) as Results;
  const svgPath = resolve(repo, "bench/results/latest.svg");
  const mdPath = resolve(repo, "BENCHMARKS.md");
  const analysisPath = resolve(repo, "bench/analysis.md");
  const analysis = existsSync(analysisPath) ? readFileSync(analysisPath, "utf8").trim() : "";
  writeFileSync(svgPath, plot(results));
  const scale = latestScale(repo);
  const node = latestOf(repo, /^real-node-.*\.json$/);
  const serving = latestOf(repo, /^serving-.*\.json$/);
  const fresh = results.fresh?.runs.length ? { run: results, file: basename(file) } : latestFresh(repo);
  const pool = latestOf(repo, /^warm-pool-.*\.json$/);
  writeFileSync(mdPath, markdown(results, basename(file), analysis, fresh) + (scale ? "\n" + scaleSection(scale.results, scale.file) : "") +
    (node ? "\n" + realNodeSection(JSON.parse(readFileSync(node, "utf8")) as RealNodeResults, basename(node)) : "") +
    (serving ? "\n" + servingSection(JSON.parse(readFileSync(serving, "utf8")) as ServingResults, basename(serving)) : "") +
    (pool ? "\n" + warmPoolSection(JSON.parse(readFileSync(pool, "utf8")) as WarmPoolResults, basename(pool)) : ""));
  return [mdPath, svgPath];
}

/** The newest `node bench/run.ts --only=fresh` run, for a full run without the fresh-process phase. */
function latestFresh(repo: string): FreshRunFile | undefined {
  const file = latestOf(repo, /^fresh-.*\.json$/);
  const run = file ? (JSON.parse(readFileSync(file, "utf8")) as Results) : undefined;
  return file && run?.fresh?.runs.length ? { run, file: basename(file) } : undefined;
}

/** A results file with a fresh-process section, and its name. */
interface FreshRunFile {
  run: Results;
  file: string;
}

/** Newest `node bench/scale.ts` run, if any. */
function latestScale(repo: string): { results: ScaleResults; file: string } | undefined {
  const dir = resolve(repo, "bench/results");
  const file = existsSync(dir) ? readdirSync(dir).filter((name) => /^scale-.*\.json$/.test(name)).sort().at(-1) : undefined;
  return file ? { results: JSON.parse(readFileSync(resolve(dir, file), "utf8")) as ScaleResults, file } : undefined;
}

/** The newest results file whose name matches. */
function latestOf(repo: string, pattern: RegExp): string | undefined {
  const dir = resolve(repo, "bench/results");
  const file = existsSync(dir) ? readdirSync(dir).filter((name) => pattern.test(name)).sort().at(-1) : undefined;
  return file ? resolve(dir, file) : undefined;
}

/** What `node bench/real-node.ts` writes. */
export interface RealNodeResults {
  startedAt: string;
  machine: { loadavgStart: number[] };
  clients: number;
  firstClientMs: Record<string, number>;
  sentToAcceptedMs: { p50: number; p90: number; p99: number; max: number };
  sentToReadyMs: { n: number; p50: number; p90: number; p95: number; p99: number; max: number };
  steps: { from: string; to: string; ms: { p50: number; p90: number; p95: number; p99: number; max: number } }[];
  idle: Record<string, { processes: number; rssMiB: number; cpuMsPerS: number }>;
}

function realNodeSection(r: RealNodeResults, file: string): string {
  const label: Record<string, string> = {
    sent: "event sent to the broker", created: "pod created (provisioned, routed, gated)", scheduled: "scheduled to the real node",
    sandbox: "sandbox + pod network (pod IP)", gatewayInit: "`gateway-init` done (VXLAN, DHCP lease)", ready: "Ready (client and `gateway-sidecar` running)",
  };
  const total = Object.values(r.idle).reduce((sum, c) => ({ rss: sum.rss + c.rssMiB, cpu: sum.cpu + c.cpuMsPerS }), { rss: 0, cpu: 0 });
  return [
    `## Real node: event → client Ready`,
    "",
    `\`node bench/real-node.ts\` (${file}, ${r.startedAt}, load ${r.machine.loadavgStart.join(" / ")} at start): ${r.clients} pending events for`,
    "gateway foo sent to the broker one at a time, the provisioner (the executable) with the real node's client pod template;",
    "each client polled every 20 ms. Cold: no pool; the images already on the node (a first client before them pulls them on a fresh node).",
    "",
    "| from → to | p50 ms | p95 ms | max ms |",
    "| --- | ---: | ---: | ---: |",
    ...r.steps.map((s) => `| ${label[s.from]} → ${label[s.to]} | ${fmt(s.ms.p50, 0)} | ${fmt(s.ms.p95, 0)} | ${fmt(s.ms.max, 0)} |`),
    `| **sent → Ready** | **${fmt(r.sentToReadyMs.p50, 0)}** | **${fmt(r.sentToReadyMs.p95, 0)}** | ${fmt(r.sentToReadyMs.max, 0)} |`,
    "",
    `The broker's 202 (accepted) came ${fmt(r.sentToAcceptedMs.p50, 0)} ms (p50) after sending: the in-memory channel is synchronous, so a`,
    "sender is answered once the provisioner has answered, i.e. once the pod exists, routed and released to the scheduler.",
    "",
    `That first client: Ready ${fmt(r.firstClientMs.ready ?? Number.NaN, 0)} ms after the event was sent (images pulled only if the node lacked them).`,
    "",
    `The node's components, idle for 60 s with ${r.clients + 1} clients and the two gateways running:`,
    "",
    "| component | processes | RSS MiB | CPU ms/s |",
    "| --- | ---: | ---: | ---: |",
    ...Object.entries(r.idle).map(([c, v]) => `| ${c} | ${v.processes} | ${fmt(v.rssMiB, 1)} | ${fmt(v.cpuMsPerS, 2)} |`),
    `| **all** | | **${fmt(total.rss, 1)}** | **${fmt(total.cpu, 2)}** |`,
    "",
  ].join("\n");
}

type Latency = { n: number; p50: number; p95: number; max: number };
/** What `node bench/serving.ts` writes. */
export interface ServingResults {
  startedAt: string;
  machine: { loadavgStart: number[] };
  zero: { n: number; acceptedMs: Latency; doneMs: Latency };
  warm: { n: number; acceptedMs: Latency; doneMs: Latency; revisionPods: number };
  idle: Record<string, { rssMiB: number; cpuMsPerS: number }>;
}

function servingSection(r: ServingResults, file: string): string {
  const row = (label: string, l: Latency) => `| ${label} | ${l.n} | ${fmt(l.p50, 0)} | ${fmt(l.p95, 0)} | ${fmt(l.max, 0)} |`;
  return [
    "## Knative Serving: event → done at zero and warm",
    "",
    `\`node bench/serving.ts\` (${file}, ${r.startedAt}, load ${r.machine.loadavgStart.join(" / ")} at start): deploy/'s Knative Service on the`,
    "local cluster's real Serving (Kourier + Envoy, the activator, our image's revision with its queue-proxy on the real node), one",
    "pending event at a time through the broker; clients on kwok's nodes. *At zero*: the revision had scaled to zero before each event",
    "(the activator holds it while a pod starts: scheduling, sandbox, image already on the node, the executable's start, readiness).",
    "*Accepted*: the broker's 202, which comes once the provisioner has answered; *done*: its result at the sink.",
    "",
    "| path | events | p50 ms | p95 ms | max ms |",
    "| --- | ---: | ---: | ---: | ---: |",
    row("at zero: sent → accepted", r.zero.acceptedMs),
    row("at zero: sent → done at the sink", r.zero.doneMs),
    row("warm: sent → accepted", r.warm.acceptedMs),
    row("warm: sent → done at the sink", r.warm.doneMs),
    "",
    "What Serving itself costs, idle with the revision at zero (30 s):",
    "",
    "| pod | RSS MiB | CPU ms/s |",
    "| --- | ---: | ---: |",
    ...Object.entries(r.idle).map(([pod, v]) => `| ${pod} | ${fmt(v.rssMiB, 1)} | ${fmt(v.cpuMsPerS, 2)} |`),
    `| **all** | **${fmt(Object.values(r.idle).reduce((sum, v) => sum + v.rssMiB, 0), 1)}** | **${fmt(Object.values(r.idle).reduce((sum, v) => sum + v.cpuMsPerS, 0), 2)}** |`,
    "",
  ].join("\n");
}

type Percentiles = { n: number; p50: number; p95: number; p99: number; max: number };
/** What `node bench/warm-pool.ts` writes. */
export interface WarmPoolResults {
  startedAt: string;
  machine: { loadavgStart: number[] };
  pool: number;
  replicas: number;
  refill: { members: number; fillMs: number; membersPerS: number };
  warm: { c1: Percentiles & { misses: number }; c16: Percentiles & { misses: number } };
  cold: { c1: { doneMs: Percentiles; readyMs: Percentiles }; c16: { doneMs: Percentiles; readyMs: Percentiles } };
  apiPerEvent: { warm: Record<string, number>; cold: Record<string, number> };
  idle: Record<string, { processes: number; rssMiB: number; cpuMsPerS: number }>;
}

function warmPoolSection(r: WarmPoolResults, file: string): string {
  const row = (label: string, l: Percentiles) => `| ${label} | ${l.n} | ${fmt(l.p50, 0)} | ${fmt(l.p95, 0)} | ${fmt(l.p99, 0)} | ${fmt(l.max, 0)} |`;
  const calls = (counts: Record<string, number>) => Object.entries(counts).map(([call, n]) => `${call} ${n}`).join(", ") || "none";
  const total = (counts: Record<string, number>) => fmt(Object.values(counts).reduce((sum, n) => sum + n, 0), 1);
  return [
    "## Warm pool: event → a Ready, routed client",
    "",
    `\`node bench/warm-pool.ts\` (${file}, ${r.startedAt}, load ${r.machine.loadavgStart.join(" / ")} at start): ${r.replicas} replicas of the`,
    `executable and its controller, \`--warm-pool foo=${r.pool}\`, clients on the real node (cluster/deploy-warm-pool's template: Ready only`,
    "while the tunnel to the gateway answers). Events POSTed to the replicas in turn. *Warm*: the pool full before each round; the answer",
    "comes with a client already Ready and routed (checked). *Cold*: a fourth replica without the pool, same gateway and template: the",
    "answer, then the pod start until Ready.",
    "",
    "| path | events | p50 ms | p95 ms | p99 ms | max ms |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
    row("warm, c = 1: event → done (client Ready)", r.warm.c1),
    row("warm, c = 16: event → done (client Ready)", r.warm.c16),
    row("cold, c = 1: event → done (pod gated → released)", r.cold.c1.doneMs),
    row("cold, c = 1: event → client Ready", r.cold.c1.readyMs),
    row("cold, c = 16: event → done", r.cold.c16.doneMs),
    row("cold, c = 16: event → client Ready", r.cold.c16.readyMs),
    "",
    `Misses (a pooled event served cold although the pool was full): ${r.warm.c1.misses} at c = 1, ${r.warm.c16.misses} at c = 16.`,
    "",
    `API requests per event (the API server's apiserver_request_total, controller stopped so no refill counts): warm ${total(r.apiPerEvent.warm)}`,
    `(${calls(r.apiPerEvent.warm)}); cold ${total(r.apiPerEvent.cold)} (${calls(r.apiPerEvent.cold)}).`,
    "",
    `Refill: an empty pool of ${r.refill.members} was all Ready after ${fmt(r.refill.fillMs / 1000, 1)} s: ${fmt(r.refill.membersPerS, 2)} members made Ready per second`,
    "on this node (each a pod start with `gateway-init`). Idle cost of the full pool over 30 s:",
    "",
    "| what | processes | RSS MiB | CPU ms/s |",
    "| --- | ---: | ---: | ---: |",
    ...Object.entries(r.idle).map(([what, v]) => `| ${what} | ${v.processes} | ${fmt(v.rssMiB, 1)} | ${fmt(v.cpuMsPerS, 2)} |`),
    "",
  ].join("\n");
}

// ------------------------------------------------------------------------------------------------ markdown

function scaleSection(s: ScaleResults, file: string): string {
  const latency = (label: string, points: ScaleResults["latency"]["empty"]) =>
    points.map((p) => `| ${label} | ${p.concurrency} | ${fmt(p.p50, 2)} | ${fmt(p.p90, 2)} | ${fmt(p.p99, 2)} | ${fmt(p.eventsPerS)} | ${fmt(p.serviceCpuMs, 2)} | ${fmt(p.apiserverCpuMs, 2)} |`);
  const failed = s.checks.filter((c) => !c.ok);
  return [
    `## At scale: ${s.pods.toLocaleString("en")} client pods`,
    "",
    `\`node bench/scale.ts --pods=${s.pods}\` (the ${s.runtime === "exe" ? "single executable" : s.runtime}, one service + two controllers, kwok nodes), run ${s.startedAt}, ${s.durationS} s; ` +
      `load average at start ${s.machine.loadavgStart.join(" / ")}. Raw numbers: [bench/results/${file}](bench/results/${file}).`,
    "",
    `Fill: ${s.fill.events.toLocaleString("en")} pending events at concurrency ${s.concurrency} answered in ${s.fill.seconds} s (${fmt(s.fill.eventsPerS)} events/s); ` +
      `a ready event for every pod at the sink after ${s.fill.allReadyS} s (kwok starts the pods).`,
    "",
    "| namespace | concurrency | p50 (ms) | p90 (ms) | p99 (ms) | events/s | service CPU/event (ms) | API server CPU/event (ms) |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...latency("empty", s.latency.empty),
    ...latency(`${s.pods.toLocaleString("en")} pods`, s.latency.full),
    "",
    "| controller | value |",
    "| --- | ---: |",
    `| leader RSS tracking every pod (peak) | ${fmt(s.controller.rssMiB)} MiB (${fmt(s.controller.peakRssMiB)}) |`,
    `| leader CPU per pod, over the fill (watch, record, ready event, finalizer) | ${fmt(s.controller.cpuPerPodMs, 2)} ms |`,
    `| leader CPU per minute once every pod ran (resync) | ${fmt(s.controller.idleCpuPerMinS, 2)} s |`,
    `| kill -9 of the leader → the standby leads | ${fmt(s.takeover.toLeadMs / 1000)} s |`,
    `| the new leader lists and resumes ${s.takeover.listedPods.toLocaleString("en")} pods (its own timing) | ${fmt(s.takeover.listMs / 1000)} s |`,
    `| kill → resumed | ${fmt(s.takeover.toResumeMs / 1000)} s |`,
    `| new leader: CPU for the takeover, RSS after | ${fmt(s.takeover.cpuS)} s, ${fmt(s.takeover.rssMiB)} MiB |`,
    `| uninstall: \`controller --remove-finalizers\` on every pod | ${fmt(s.uninstall.removeFinalizersS)} s |`,
    `| namespace gone after its deletion | ${s.uninstall.namespaceGoneS === null ? "not within 10 min" : `${s.uninstall.namespaceGoneS} s`} |`,
    "",
    failed.length ? `${failed.length} of ${s.checks.length} checks failed: ${failed.map((c) => `${c.name} (${c.detail})`).join("; ")}` : `All ${s.checks.length} checks passed (one routed pod per event, one ready event per pod, no lifecycle id twice, the uninstall step).`,
    "",
  ].join("\n");
}

const fmt = (value: number | null | undefined, digits = 1) =>
  value === null || value === undefined || !Number.isFinite(value) ? "–" : value.toFixed(digits);
const signed = (value: number, digits = 2) => (value >= 0 ? "+" : "") + value.toFixed(digits);
const MB_IN_MIB = 1e6 / 2 ** 20;

interface Target {
  target: string;
  measured: string;
  met: boolean | null;
}

function targets(r: Results, fresh: FreshResult | undefined): Target[] {
  const list: Target[] = [];
  if (fresh?.execToFirstAnswerMs.exe && fresh.execToFirstAnswerMs.jobsink) {
    const cpu = (side: string, c: number) => fresh.summary.find((s) => s.side === side && s.concurrency === c)?.cpuMsPerEvent.median;
    const points = [...new Set(fresh.summary.map((s) => s.concurrency))];
    const ours = points.map((c) => `${fmt(cpu("exe", c), 2)}`).join(" / ");
    const peer = points.map((c) => `${fmt(cpu("jobsink", c), 2)}`).join(" / ");
    list.push({
      target: "fresh process (a new revision pod): own CPU per event ≤ JobSink's",
      measured: `exe ${ours} ms at c = ${points.join(" / ")}; JobSink ${peer} ms`,
      met: points.every((c) => (cpu("exe", c) ?? Infinity) <= (cpu("jobsink", c) ?? -Infinity)),
    });
    const [exe, jobsink] = [fresh.execToFirstAnswerMs.exe, fresh.execToFirstAnswerMs.jobsink];
    list.push({
      target: "fresh process: exec → first answer ≤ JobSink's",
      measured: `exe median ${fmt(exe.median)} ms; JobSink ${fmt(jobsink.median)} ms (${exe.n} starts each)`,
      met: exe.median <= jobsink.median,
    });
  }
  if (r.throughput.length) {
    const bestBase = r.throughput.reduce((a, b) => (b.baseline.perSecond > a.baseline.perSecond ? b : a));
    const bestOurs = r.throughput.reduce((a, b) => (b.ours.perSecond > a.ours.perSecond ? b : a));
    const ratio = bestOurs.ours.perSecond / bestBase.baseline.perSecond;
    const c64 = r.throughput.find((p) => p.concurrency === 64) ?? r.throughput[r.throughput.length - 1]!;
    const serviceCpu = c64.ours.cpuMsPerEvent.service;
    const jobsinkCpu = c64.peers?.jobsink?.cpuMsPerEvent.jobsink;
    list.push({
      target: `service CPU per event at c=64 (${c64.oursRuntime ?? "node"}) ≤ 1.0 ms (stretch: ≤ JobSink's)`,
      measured: `${fmt(serviceCpu, 2)} ms at c=${c64.concurrency}${jobsinkCpu === undefined ? "" : `; JobSink ${fmt(jobsinkCpu, 2)} ms`}${c64.peers?.node ? `; Node service ${fmt(c64.peers.node.cpuMsPerEvent.service, 2)} ms` : ""}`,
      met: serviceCpu === undefined ? null : serviceCpu <= 1.0,
    });
    list.push({
      target: "throughput ≥ 0.95× baseline at best concurrency",
      measured: `${ratio.toFixed(2)}× (ours ${fmt(bestOurs.ours.perSecond)}/s at c=${bestOurs.concurrency} vs baseline ${fmt(bestBase.baseline.perSecond)}/s at c=${bestBase.concurrency})`,
      met: ratio >= 0.95,
    });
    const p50 = r.throughput.map((p) => `c=${p.concurrency}: ${signed(p.addedP50Ms)}${p.pairedAddedP50Ms === undefined ? "" : ` (paired ${signed(p.pairedAddedP50Ms)})`}`).join(", ");
    const p99 = r.throughput.map((p) => `c=${p.concurrency}: ${signed(p.addedP99Ms)}`).join(", ");
    const p50Met = r.throughput.filter((p) => p.addedP50Ms <= 1).map((p) => p.concurrency);
    const p99Met = r.throughput.filter((p) => p.addedP99Ms <= 5).map((p) => p.concurrency);
    const c1 = r.throughput.find((p) => p.concurrency === 1);
    list.push({ target: "added latency p50 at c=1 ≤ 1 ms", measured: `${p50} ms`, met: c1 ? c1.addedP50Ms <= 1 : null });
    list.push({ target: "added latency p99 ≤ 5 ms", measured: `${p99} ms (met at c=${p99Met.join(",") || "none"})`, met: p99Met.length === r.throughput.length });
    void p50Met;
  }
  // The memory targets are about what ships: the single executable when it was measured, else the Node service.
  const variants = r.rssVariants ?? (r.rss ? [r.rss] : []);
  const judged = variants.find((v) => v.variant === "exe") ?? variants.find((v) => (v.variant ?? "node") === "node");
  if (judged) {
    const label = judged.variant === "exe" ? "single executable" : "Node service (executable not measured)";
    const others = variants.filter((v) => v !== judged);
    const alsoIdle = others.map((v) => `${v.variant ?? v.runtime}: ${fmt(v.idleMiB)}`).join(", ");
    list.push({
      target: "idle RSS ≤ 50 MiB",
      measured: `${label}: ${fmt(judged.idleMiB)} MiB (${fmt(judged.idleMiB / MB_IN_MIB)} MB)${alsoIdle ? `; also ${alsoIdle} MiB` : ""}`,
      met: judged.idleMiB <= 50,
    });
    const after1k = judged.checkpoints.find((c) => c.events === 1000);
    if (after1k) {
      list.push({ target: "RSS after 1,000 events ≤ 1.3× idle", measured: `${label}: ${fmt(after1k.rssMiB)} MiB = ${fmt(after1k.rssMiB / judged.idleMiB, 2)}× idle`, met: after1k.rssMiB <= 1.3 * judged.idleMiB });
    }
    const cold = r.coldStart.summary.find((c) => c.runtime === judged.variant);
    if (cold) list.push({ target: "cold start (exec → first answer) ≤ 60 ms", measured: `${label}: median ${fmt(cold.execToFirstAnswerMs.median)} ms`, met: cold.execToFirstAnswerMs.median <= 60 });
    if (judged.changeFirstToLastPct !== null) {
      const span = (v: typeof judged) => {
        const [first, last] = [v.checkpoints[0]!, v.checkpoints[v.checkpoints.length - 1]!];
        return `${fmt(first.rssMiB)} → ${fmt(last.rssMiB)} MiB (${v.changeFirstToLastPct === null ? "–" : signed(v.changeFirstToLastPct, 1)} %)`;
      };
      const [first, last] = [judged.checkpoints[0]!, judged.checkpoints[judged.checkpoints.length - 1]!];
      const alsoSpan = others.filter((v) => v.changeFirstToLastPct !== null).map((v) => `${v.variant ?? v.runtime}: ${span(v)}`).join("; ");
      list.push({
        target: `RSS within ±10 % between ${first.events} and ${last.events} events`,
        measured: `${label}: ${span(judged)}${alsoSpan ? `; also ${alsoSpan}` : ""}`,
        met: Math.abs(judged.changeFirstToLastPct) <= 10,
      });
    }
  }
  if (r.burst) {
    list.push({
      target: `burst of ${r.burst.events}: 0 duplicates, 0 lost`,
      measured: `${r.burst.podsCreated} pods, ${r.burst.duplicates} duplicates, ${r.burst.lost} lost`,
      met: r.burst.duplicates === 0 && r.burst.lost === 0 && r.burst.podsCreated === r.burst.events,
    });
  }
  return list;
}

const COMPONENTS = ["apiserver", "etcd", "webhook-foo", "webhook-bar", "scheduler", "controller-manager", "kwok", "service", "jobsink", "bench"];

function cpuRow(label: string, side: Side): string {
  const cells = COMPONENTS.map((name) => fmt(side.cpuMsPerEvent[name], 2));
  const total = Object.values(side.cpuMsPerEvent).reduce((sum, ms) => sum + ms, 0);
  return `| ${label} | ${cells.join(" | ")} | **${fmt(total, 2)}** | ${fmt(side.cpuUtilisation, 2)} | ${fmt(side.otherCpuUtilisation, 2)} |`;
}

/** The other sides of the same interleaved run (the Node service, Knative JobSink), each against the same baseline. */
function peerTable(r: Results): string[] {
  const rows = r.throughput.flatMap((p) => [
    [p.oursRuntime ?? "node", p.ours, p.ratio, p.addedP50Ms] as const,
    ...Object.entries(p.peers ?? {}).map(([name, side]) => [name, side, side.ratio, side.addedP50Ms] as const),
  ].map(([name, side, ratio, added]) =>
    `| ${p.concurrency} | ${name} | ${fmt(side.perSecond)} | ${ratio.toFixed(2)} | ${fmt(side.latencyMs.p50, 2)} / ${fmt(side.latencyMs.p99, 2)} | ${signed(added)} | ${fmt(side.cpuMsPerEvent.service ?? side.cpuMsPerEvent.jobsink, 2)} | ${fmt(side.cpuMsPerEvent.apiserver, 2)} |`));
  if (!r.throughput.some((p) => p.peers && Object.keys(p.peers).length)) return [];
  return [
    "### Every side of the run: the executable, the Node service, Knative JobSink",
    "",
    "Same blocks, same baseline. \"own CPU\" is the receiving process alone (our service; JobSink's `jobsink` process — its relay process in front, needed because it listens on every interface of a fixed port and so runs in a network namespace of its own, is not counted, but its hops are in JobSink's latency). JobSink makes a Job + Secret per event (three API calls: list, create, create) and answers 202; ours makes a routed pod (create, patch) and answers with the result event.",
    "",
    "| concurrency | side | events/s | ×baseline | p50 / p99 (ms) | added p50 (ms) | own CPU/event (ms) | apiserver CPU/event (ms) |",
    "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...rows,
    "",
  ];
}

/** One event as 10 concurrent copies, and bad input: what each receiver answered and created. */
function correctnessTable(r: Results): string[] {
  if (!r.correctness?.length) return [];
  const inputs = r.correctness[0]!.badInput.map((b) => b.name);
  return [
    "## Correctness beside the peer",
    "",
    "One pending event sent as 10 concurrent copies, then requests that are not a valid pending event, one at a time. \"created\" counts the pods (ours) or Jobs (JobSink) each left behind.",
    "",
    `| receiver | 10 copies: statuses → created | ${inputs.join(" | ")} |`,
    `| --- | --- | ${inputs.map(() => "---").join(" | ")} |`,
    ...r.correctness.map((c) => `| ${c.runtime} | ${c.copies.statuses.join(", ")} → ${c.copies.created} | ${c.badInput.map((b) => `${b.status}${b.answer.startsWith("io.podgateway") ? ` (${b.answer.split(".").pop()})` : ""}, created ${b.created}`).join(" | ")} |`),
    "",
  ];
}

/** Fresh processes beside JobSink: CPU per event by concurrency, and exec → first answer. */
function freshSection({ run, file }: FreshRunFile): string[] {
  const fresh = run.fresh!;
  const sides = Object.keys(fresh.execToFirstAnswerMs);
  const label = (side: string) => (side === "exe" ? "single executable" : side === "jobsink" ? "JobSink" : side);
  return [
    "## Fresh processes: a new revision pod",
    "",
    `What a pod does after Knative scales the revision up from zero: a new process per run and concurrency, exec → its first answer (one event, alone), ${fresh.warmupEvents} warm-up events (the first included), then ${fresh.events} timed events at the concurrency; ` +
      "\"own CPU\" is the process's alone per timed event (/proc/<pid>/stat), median over the runs (min–max). The executable and Knative JobSink (a `jobsink` process, exec'd after its network namespace and relay are up; ready when its informer has the JobSink, polled every 10 ms) alternate: exe, jobsink, then jobsink, exe in the next run. " +
      "The throughput phase's long-lived processes have a warm JIT; these do not. " +
      `Run ${run.startedAt}, commit \`${run.git.describe}\`, load average at start ${run.machine.loadavgStart.join(" / ")}; raw numbers: [bench/results/${file}](bench/results/${file}).`,
    "",
    "| concurrency | side | runs | own CPU/event, median (min–max) (ms) | events/s | p50 (ms) |",
    "| ---: | --- | ---: | ---: | ---: | ---: |",
    ...fresh.summary.map((s) => `| ${s.concurrency} | ${label(s.side)} | ${s.runs} | ${fmt(s.cpuMsPerEvent.median, 2)} (${fmt(s.cpuMsPerEvent.min, 2)}–${fmt(s.cpuMsPerEvent.max, 2)}) | ${fmt(s.perSecond)} | ${fmt(s.latencyP50Ms, 2)} |`),
    "",
    "| side | starts | exec → first answer, median (min–max) (ms) | own CPU to the first answer, median (ms) |",
    "| --- | ---: | ---: | ---: |",
    ...sides.map((side) => {
      const first = fresh.execToFirstAnswerMs[side]!;
      const startCpu = fresh.runs.filter((run) => run.side === side).map((run) => run.startCpuMs).sort((a, b) => a - b);
      return `| ${label(side)} | ${first.n} | ${fmt(first.median)} (${fmt(first.min)}–${fmt(first.max)}) | ${fmt(startCpu[Math.floor(startCpu.length / 2)], 0)} |`;
    }),
    "",
    ...fresh.skipped.map((s) => `- ${s.side}: skipped — ${s.reason}`),
    ...(fresh.skipped.length ? [""] : []),
  ];
}

function markdown(r: Results, file: string, analysis: string, fresh?: FreshRunFile): string {
  const out: string[] = [];
  const push = (...lines: string[]) => out.push(...lines);
  push(
    "# Benchmarks",
    "",
    "<!-- Generated by `npm run bench` (bench/run.ts → bench/report.ts) from bench/results/" + file + ". Edit bench/analysis.md, not this file. -->",
    "",
    `Run **${r.startedAt}** (${r.mode}, ${r.durationS} s) on ${r.machine.cpus} cores (${r.machine.cpuModel}), ${r.machine.memoryGiB} GiB, ${r.machine.kernel}; ` +
      `load average at start ${r.machine.loadavgStart.join(" / ")}.`,
    `Commit \`${r.git.describe}\`${r.git.serviceFilesChanged.length ? ` (uncommitted changes to ${r.git.serviceFilesChanged.join(", ")})` : ""}. ` +
      `Runtimes: Node ${r.versions.node}, Deno ${r.versions.deno}, Bun ${r.versions.bun}; Kubernetes ${r.versions.kubernetes} (local cluster, kwok nodes); ` +
      `hono ${r.versions.hono}, @hono/node-server ${r.versions["@hono/node-server"]}, undici ${r.versions.undici}, cloudevents ${r.versions.cloudevents}.`,
    "",
    "Reproduce: `npm run cluster -- up && npm run bench` (full, ~10 min) or `npm run bench -- --quick` (~1 min smoke test, exits non-zero if an event is lost, duplicated or answered wrongly). Raw numbers: [bench/results/" + file + "](bench/results/" + file + ").",
    "",
    "## Against the targets",
    "",
    ...(r.machine.loadavgStart[0]! > r.machine.cpus
      ? [`**The machine was busy** (load average ${r.machine.loadavgStart[0]} on ${r.machine.cpus} cores at the start): timings and CPU per event are inflated and noisy; re-run on a quiet machine before judging a target met or missed.`, ""]
      : []),
    "| target | measured | |",
    "| --- | --- | --- |",
    ...targets(r, fresh?.run.fresh).map((t) => `| ${t.target} | ${t.measured} | ${t.met === null ? "–" : t.met ? "met" : "**missed**"} |`),
    "",
  );

  if (r.throughput.length) {
    push(
      "## Throughput and latency",
      "",
      "Events → routed pods per second, and per-event latency, at each concurrency. **Baseline**: `provisionClient(...)` in a bare loop in the bench process (the same Kubernetes calls — POST pod with a scheduling gate, check for `gateway-init`, JSON-patch the gate away — with the same REST client and undici). **Ours**: what ships — the single executable (`dist/podgateway-provisioner`: Bun.serve, Bun's fetch) when built, else the Node service — as a child process on 127.0.0.1, sent binary-mode CloudEvents (cloudevents SDK `HTTP.binary`) over keep-alive HTTP; latency is the sender's round trip. " +
        `Each point: a fresh routed namespace per side, ${String(r.settings.warmupPerPoint)} warm-up events per side, then the timed events in blocks whose order alternates (baseline, exe, node, jobsink, then the reverse, …) so that drift in the shared machine's load hits both sides alike. ` +
        "\"paired\" = median over blocks of (ours block p50 − adjacent baseline block p50).",
      "",
      "| concurrency | blocks × events | baseline events/s | ours events/s | ours/baseline | baseline p50 / p99 (ms) | ours p50 / p99 (ms) | added p50 (ms) | added p50, paired (ms) | added p99 (ms) |",
      "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
      ...r.throughput.map((p) =>
        `| ${p.concurrency} | ${p.blocks ?? 1} × ${p.blockSize ?? p.baseline.events} | ${fmt(p.baseline.perSecond)} | ${fmt(p.ours.perSecond)} | ${p.ratio.toFixed(2)} | ${fmt(p.baseline.latencyMs.p50, 2)} / ${fmt(p.baseline.latencyMs.p99, 2)} | ${fmt(p.ours.latencyMs.p50, 2)} / ${fmt(p.ours.latencyMs.p99, 2)} | ${signed(p.addedP50Ms)} | ${p.pairedAddedP50Ms === undefined ? "–" : signed(p.pairedAddedP50Ms)} | ${signed(p.addedP99Ms)} |`
      ),
      "",
      "![throughput and latency against concurrency](bench/results/latest.svg)",
      "",
      ...peerTable(r),
      "### Where the CPU goes (ms of CPU per event, by process)",
      "",
      "Read from /proc/<pid>/stat before and after each timed run. `bench` is the benchmark process itself: the provisioning loop for the baseline, the CloudEvents senders for ours. Utilisation is CPU-seconds per wall-second over all these processes (the machine has " + r.machine.cpus + "); \"other processes\" is what everything else on the machine used meanwhile (noise: other work sharing the machine).",
      "",
      `| run | ${COMPONENTS.join(" | ")} | total | utilisation | other processes |`,
      `| --- | ${COMPONENTS.map(() => "---:").join(" | ")} | ---: | ---: | ---: |`,
      ...r.throughput.flatMap((p: ThroughputPoint) => [
        cpuRow(`baseline c=${p.concurrency}`, p.baseline),
        cpuRow(`${p.oursRuntime ?? "ours"} c=${p.concurrency}`, p.ours),
        ...Object.entries(p.peers ?? {}).map(([name, side]) => cpuRow(`${name} c=${p.concurrency}`, side)),
      ]),
      ...(r.burst ? [cpuRow(`ours, burst of ${r.burst.events}`, { ...emptySide(), cpuMsPerEvent: r.burst.cpuMsPerEvent, cpuUtilisation: Number.NaN, otherCpuUtilisation: Number.NaN })] : []),
      "",
    );
    const total = (side: Side, without: string[] = []) =>
      Object.entries(side.cpuMsPerEvent).filter(([name]) => !without.includes(name)).reduce((sum, [, ms]) => sum + ms, 0);
    push(
      "CPU-bound capacity, from these numbers: on a machine where every core is busy, events/s ≈ cores ÷ CPU per event, so the ratio of the totals predicts ours/baseline at saturation without the wall-clock noise of a shared machine. " +
        "\"Without senders\" leaves out the bench process on our side (the CloudEvents senders, which in production are the broker on another machine) and compares cluster + service against cluster + in-process loop.",
      "",
      "| concurrency | baseline CPU/event (ms) | ours CPU/event (ms) | predicted ours/baseline | ours without senders (ms) | predicted, without senders | measured ours/baseline |",
      "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
      ...r.throughput.map((p) => {
        const b = total(p.baseline);
        const o = total(p.ours);
        const oNoSender = total(p.ours, ["bench"]);
        return `| ${p.concurrency} | ${fmt(b, 2)} | ${fmt(o, 2)} | ${fmt(b / o, 2)} | ${fmt(oNoSender, 2)} | ${fmt(b / oNoSender, 2)} | ${p.ratio.toFixed(2)} |`;
      }),
      "",
    );
    // Pod requests only (other tenants of the shared cluster make all sorts of others), and only those made at least once per 20 events.
    const keys = [...new Set(r.throughput.flatMap((p) => [...Object.entries(p.baseline.apiCallsPerEvent ?? {}), ...Object.entries(p.ours.apiCallsPerEvent ?? {})]
      .filter(([key, perEvent]) => / pods(\/|$)/.test(key) && perEvent >= 0.05).map(([key]) => key)))].sort();
    if (keys.length) {
      push(
        "### API server requests per event",
        "",
        "Pod requests counted by the API server (`apiserver_request_total`) around each side's first timed block: every client, so besides ours or the baseline's POST and PATCH there are the scheduler's bindings and kwok's status updates for the pods that fit on the three fake nodes (330), and whatever other tenants of the shared cluster did meanwhile. POST pods = PATCH pods = 1.00 on both sides is the check that the service makes exactly the baseline's calls.",
        "",
        `| run | ${keys.join(" | ")} |`,
        `| --- | ${keys.map(() => "---:").join(" | ")} |`,
        ...r.throughput.flatMap((p) => [
          `| baseline c=${p.concurrency} | ${keys.map((k) => fmt(p.baseline.apiCallsPerEvent?.[k] ?? 0, 2)).join(" | ")} |`,
          `| ours c=${p.concurrency} | ${keys.map((k) => fmt(p.ours.apiCallsPerEvent?.[k] ?? 0, 2)).join(" | ")} |`,
        ]),
        "",
      );
    }
  }

  push(...correctnessTable(r));
  push("## Cold start", "", "Exec of the process → its answer to the first event (a done event for a routed pod), including start-up, the kubeconfig, the first TLS connection to the API server and the first provisioning. Runs interleaved across runtimes.", "");
  if (r.coldStart.summary.length) {
    push(
      "| runtime | command | runs | exec → listening, median (ms) | exec → first event answered, median (min–max) (ms) | RSS after first event (MiB) |",
      "| --- | --- | ---: | ---: | ---: | ---: |",
      ...r.coldStart.summary.map((s) =>
        `| ${s.runtime} | ${COMMANDS[s.runtime] ?? s.runtime} | ${s.runs} | ${fmt(s.execToListeningMs.median)} | ${
          s.failedRuns === s.runs ? "**never answered done**" : `${fmt(s.execToFirstAnswerMs.median)} (${fmt(s.execToFirstAnswerMs.min)}–${fmt(s.execToFirstAnswerMs.max)})`
        }${s.failedRuns && s.failedRuns < s.runs ? ` (${s.failedRuns} runs failed)` : ""} | ${fmt(s.rssAfterFirstEventMiB)} |`
      ),
      "",
    );
    for (const s of r.coldStart.summary.filter((entry) => entry.failedRuns)) {
      push(`- ${s.runtime}: ${s.failedRuns} of ${s.runs} first events were not answered done: \`${(s.firstError ?? "").replace(/`/g, "'").slice(0, 300)}\``);
    }
    if (r.coldStart.summary.some((entry) => entry.failedRuns)) push("");
  }
  for (const skipped of r.coldStart.skipped) push(`- ${skipped.runtime}: skipped — ${skipped.reason}`);
  if (r.coldStart.skipped.length) push("");

  if (fresh) push(...freshSection(fresh));

  const memory = r.rssVariants ?? (r.rss ? [r.rss] : []);
  if (memory.length || r.rssSkipped?.length) {
    const withCpu = memory.some((v) => v.serviceCpuMsPerEvent !== undefined);
    const checkpointEvents = [...new Set(memory.flatMap((v) => v.checkpoints.map((c) => c.events)))].sort((a, b) => a - b);
    push(
      "## Memory",
      "",
      `VmRSS (/proc/<pid>/status) of each way to run the service, one after the other, each in a fresh process and namespace: idle 3 s after start, then 2 s after ${checkpointEvents.join(" and ")} events sent at concurrency ${String(r.settings.rssConcurrency)}. ` +
        "The memory targets are judged against the single executable (what the image ships) when it was built; the Node rows are for comparison.",
      "",
      `| variant | command | idle | ${checkpointEvents.map((e) => `after ${e}`).join(" | ")} | change${checkpointEvents.length > 1 ? ` ${checkpointEvents[0]} → ${checkpointEvents[checkpointEvents.length - 1]}` : ""} | peak (VmHWM) |${withCpu ? " service CPU per event |" : ""}`,
      `| --- | --- | ---: | ${checkpointEvents.map(() => "---:").join(" | ")} | ---: | ---: |${withCpu ? " ---: |" : ""}`,
      ...memory.map((v) =>
        `| ${v.variant === "exe" ? "**single executable**" : v.variant ?? v.runtime} | ${v.command ? `\`${v.command}\`` : COMMANDS[v.runtime] ?? v.runtime} | ${fmt(v.idleMiB)} MiB | ${
          checkpointEvents.map((e) => {
            const c = v.checkpoints.find((point) => point.events === e);
            return c ? `${fmt(c.rssMiB)} MiB` : "–";
          }).join(" | ")
        } | ${v.changeFirstToLastPct === null ? "–" : `${signed(v.changeFirstToLastPct, 1)} %`} | ${fmt(v.peakMiB)} MiB |${withCpu ? ` ${v.serviceCpuMsPerEvent === undefined ? "–" : `${fmt(v.serviceCpuMsPerEvent, 2)} ms`} |` : ""}`
      ),
      "",
    );
    for (const skipped of r.rssSkipped ?? []) push(`- ${skipped.variant}: skipped — ${skipped.reason}`);
    if (r.rssSkipped?.length) push("");
  }

  if (r.burst) {
    const b = r.burst;
    push(
      "## Burst",
      "",
      `${b.events} distinct events released at once to ${b.senders} concurrent senders (the service admits 256 at a time by default and answers the rest 429 + Retry-After: 1). Each sender redelivers an event, honouring Retry-After, for up to ${b.retryWindowS ?? "–"} s, like a broker's retry window; an event not done by then counts as lost. The slowest event needed ${b.maxAttempts ?? "–"} deliveries.`,
      "",
      "| events | time to drain | events/s | pods created | duplicates | lost | retries | latency p50 / p99 |",
      "| ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
      `| ${b.events} | ${fmt(b.drainMs / 1000, 2)} s | ${fmt(b.perSecond)} | ${b.podsCreated} | ${b.duplicates} | ${b.lost} | ${Object.entries(b.retries).map(([k, v]) => `${k}: ${v}`).join(", ") || "none"} | ${fmt(b.latencyMs.p50 / 1000, 2)} s / ${fmt(b.latencyMs.p99 / 1000, 2)} s |`,
      "",
    );
  }

  push("## Image", "");
  if (!r.image) push("Not measured in this run.", "");
  else if ("skipped" in r.image) push(`Skipped: ${r.image.skipped}.`, "");
  else {
    push(
      `| executable (${r.image.runtime}, built from ${r.image.builtFrom}) | rootfs (loader, libc, CA bundle, passwd) | image content, uncompressed | ≈ compressed (tar \\| gzip -6) |`,
      "| ---: | ---: | ---: | ---: |",
      `| ${fmt(r.image.binaryMiB)} MiB | ${fmt(r.image.rootfsMiB, 2)} MiB | ${fmt(r.image.uncompressedMiB)} MiB | ${r.image.gzipMiB === null ? "–" : `${fmt(r.image.gzipMiB)} MiB`} |`,
      "",
      r.image.pushed
        ? `Pushed image \`${r.image.pushed.ref}\` (\`${r.image.pushed.digest.slice(0, 19)}…\`): **${fmt(r.image.pushed.compressedMiB)} MiB** compressed (config + layers, from the ${r.image.pushed.source}).`
        : "No pushed image found (`npm run publish:local` writes .cache/publish-local.env).",
      "",
      r.image.note,
      "",
    );
  }

  if (analysis) push(analysis, "");

  push("## Checks of this run", "");
  const failed = r.checks.filter((c) => !c.ok);
  push(failed.length ? `${failed.length} of ${r.checks.length} checks failed:` : `All ${r.checks.length} correctness checks passed (every event answered done, one routed and released pod per event, no duplicates, clean shutdowns).`);
  for (const c of failed) push(`- ${c.name}: ${c.detail.split("\n")[0]}`);
  for (const note of r.notes) push(`- note: ${note}`);
  push("");
  return out.join("\n");
}

const COMMANDS: Record<string, string> = {
  node: "`node src/main/node.ts`",
  deno: "`deno run -A --no-check src/main/deno.ts`",
  exe: "`dist/podgateway-provisioner`",
};

function emptySide(): Side {
  return {
    events: 0, done: 0, failed: 0, lost: 0, unsent: 0, retries: {}, wallMs: 0, perSecond: 0,
    latencyMs: { n: 0, min: 0, p50: 0, p90: 0, p99: 0, max: 0, mean: 0 }, cpuMsPerEvent: {}, cpuUtilisation: 0, otherCpuUtilisation: 0, apiCallsPerEvent: {},
  };
}

// ------------------------------------------------------------------------------------------------ SVG

const COLOURS = { baseline: "#4c72b0", ours: "#dd8452" };

function niceStep(max: number, ticks = 5): number {
  const raw = max / ticks;
  const power = 10 ** Math.floor(Math.log10(raw));
  const unit = raw / power;
  return (unit <= 1 ? 1 : unit <= 2 ? 2 : unit <= 5 ? 5 : 10) * power;
}

const esc = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** Two panels: events/s against concurrency (linear), latency p50/p99 against concurrency (log scale). */
export function plot(r: Results): string {
  const width = 980;
  const height = 450;
  const panel = { w: 400, h: 270, top: 85 };
  const lefts = [70, 560];
  const points = r.throughput;
  const xs = points.map((p) => p.concurrency);
  const parts: string[] = [];
  const text = (x: number, y: number, content: string, attrs = "") =>
    parts.push(`<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${attrs}>${esc(content)}</text>`);

  parts.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  text(width / 2, 28, "podgateway-provisioner: ours (CloudEvents → service) vs baseline (provisionClient loop)", `text-anchor="middle" font-size="16" font-weight="bold"`);
  text(width / 2, 48, `${r.startedAt.slice(0, 16).replace("T", " ")} UTC · ${r.machine.cpus} cores · Node ${r.versions.node} · Kubernetes ${r.versions.kubernetes} · ${r.mode} run`, `text-anchor="middle" font-size="12" fill="#555"`);

  if (!points.length) {
    text(width / 2, height / 2, "no throughput points in this run", `text-anchor="middle" font-size="14"`);
    return svgDocument(width, height, parts);
  }

  // x: log2 spacing of the concurrencies, evenly placed.
  const xMin = Math.log2(Math.min(...xs));
  const xMax = Math.log2(Math.max(...xs));
  const xPos = (left: number, c: number) => left + 20 + (xMax === xMin ? (panel.w - 40) / 2 : ((Math.log2(c) - xMin) / (xMax - xMin)) * (panel.w - 40));

  const frame = (left: number, title: string, yLabel: string) => {
    parts.push(`<rect x="${left}" y="${panel.top}" width="${panel.w}" height="${panel.h}" fill="none" stroke="#999"/>`);
    text(left + panel.w / 2, panel.top - 8, title, `text-anchor="middle" font-size="13" font-weight="bold"`);
    text(left + panel.w / 2, panel.top + panel.h + 38, "concurrency (events in flight)", `text-anchor="middle" font-size="12"`);
    text(left - 48, panel.top + panel.h / 2, yLabel, `text-anchor="middle" font-size="12" transform="rotate(-90 ${left - 48} ${panel.top + panel.h / 2})"`);
    for (const c of xs) {
      const x = xPos(left, c);
      parts.push(`<line x1="${x.toFixed(1)}" y1="${panel.top + panel.h}" x2="${x.toFixed(1)}" y2="${panel.top + panel.h + 5}" stroke="#999"/>`);
      text(x, panel.top + panel.h + 18, String(c), `text-anchor="middle" font-size="11"`);
    }
  };
  const series = (pts: [number, number][], colour: string, dashed: boolean, labels: string[] | undefined, below = false) => {
    parts.push(`<polyline fill="none" stroke="${colour}" stroke-width="2.2"${dashed ? ` stroke-dasharray="6 4"` : ""} points="${pts.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" ")}"/>`);
    pts.forEach(([x, y], i) => {
      parts.push(`<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="3.5" fill="${dashed ? "#fff" : colour}" stroke="${colour}" stroke-width="1.5"/>`);
      if (labels) text(x, below ? y + 17 : y - 8, labels[i]!, `text-anchor="middle" font-size="10" fill="${colour}"`);
    });
  };

  // Left panel: throughput, linear from 0.
  {
    const left = lefts[0]!;
    const max = Math.max(...points.flatMap((p) => [p.baseline.perSecond, p.ours.perSecond]));
    const step = niceStep(max * 1.15);
    const top = Math.ceil((max * 1.15) / step) * step;
    const y = (v: number) => panel.top + panel.h - (v / top) * panel.h;
    frame(left, "Throughput: routed pods per second", "events/s");
    for (let v = 0; v <= top + 1e-9; v += step) {
      parts.push(`<line x1="${left}" y1="${y(v).toFixed(1)}" x2="${left + panel.w}" y2="${y(v).toFixed(1)}" stroke="#eee"/>`);
      text(left - 6, y(v) + 4, String(Math.round(v)), `text-anchor="end" font-size="11"`);
    }
    series(points.map((p) => [xPos(left, p.concurrency), y(p.baseline.perSecond)]), COLOURS.baseline, false, points.map((p) => p.baseline.perSecond.toFixed(0)));
    series(points.map((p) => [xPos(left, p.concurrency), y(p.ours.perSecond)]), COLOURS.ours, false, points.map((p) => `${p.ours.perSecond.toFixed(0)} (${p.ratio.toFixed(2)}×)`), true);
  }

  // Right panel: latency p50 (solid) and p99 (dashed), log10.
  {
    const left = lefts[1]!;
    const values = points.flatMap((p) => [p.baseline.latencyMs.p50, p.baseline.latencyMs.p99, p.ours.latencyMs.p50, p.ours.latencyMs.p99]).filter((v) => v > 0);
    const lo = Math.floor(Math.log10(Math.min(...values)));
    const hi = Math.ceil(Math.log10(Math.max(...values)));
    const span = Math.max(1, hi - lo);
    const y = (v: number) => panel.top + panel.h - ((Math.log10(v) - lo) / span) * panel.h;
    frame(left, "Latency per event: p50 (solid), p99 (dashed)", "milliseconds (log scale)");
    for (let e = lo; e <= lo + span; e++) {
      for (const m of [1, 2, 5]) {
        const v = m * 10 ** e;
        if (Math.log10(v) > lo + span + 1e-9) continue;
        parts.push(`<line x1="${left}" y1="${y(v).toFixed(1)}" x2="${left + panel.w}" y2="${y(v).toFixed(1)}" stroke="${m === 1 ? "#ddd" : "#f3f3f3"}"/>`);
        text(left - 6, y(v) + 4, v >= 1 ? String(v) : v.toPrecision(1), `text-anchor="end" font-size="11"${m === 1 ? "" : ` fill="#888"`}`);
      }
    }
    series(points.map((p) => [xPos(left, p.concurrency), y(p.baseline.latencyMs.p50)]), COLOURS.baseline, false, undefined);
    series(points.map((p) => [xPos(left, p.concurrency), y(p.ours.latencyMs.p50)]), COLOURS.ours, false, points.map((p) => `${signed(p.addedP50Ms, 1)}`));
    series(points.map((p) => [xPos(left, p.concurrency), y(p.baseline.latencyMs.p99)]), COLOURS.baseline, true, undefined);
    series(points.map((p) => [xPos(left, p.concurrency), y(p.ours.latencyMs.p99)]), COLOURS.ours, true, points.map((p) => `${signed(p.addedP99Ms, 1)}`));
  }

  // Legend.
  const legendY = height - 16;
  const legend = (x: number, colour: string, label: string) => {
    parts.push(`<line x1="${x}" y1="${legendY}" x2="${x + 26}" y2="${legendY}" stroke="${colour}" stroke-width="2.5"/>`);
    text(x + 32, legendY + 4, label, `font-size="12"`);
  };
  legend(200, COLOURS.baseline, "baseline: provisionClient() loop, same HTTP client");
  legend(560, COLOURS.ours, "ours: binary CloudEvents → service (labels: ratio / added ms)");
  return svgDocument(width, height, parts);
}

function svgDocument(width: number, height: number, parts: string[]): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif">\n${parts.join("\n")}\n</svg>\n`;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const repo = resolve(fileURLToPath(import.meta.url), "../..");
  const file = process.argv[2] ? resolve(process.argv[2]) : undefined;
  for (const written of writeReport(repo, file)) console.log(`wrote ${written}`);
}
