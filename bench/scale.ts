/**
 * `node bench/scale.ts [--pods=20000] [--runtime=exe|node] [--concurrency=32]`: the controller and the service at
 * the size of a large install (a bench mode, not CI; ~1 h for 20,000 pods on this machine, kwok-bound).
 *
 * On the local cluster (`npm run cluster -- up`): one service and one controller (lifecycle events on, to a sink
 * in this process) turn `--pods` pending events into routed client pods on kwok nodes. Measured:
 *   - the service's per-event latency at c=1 and c=16 with the namespace empty and again with every pod there;
 *   - the leading controller's RSS and CPU while it tracks the pods, and its idle CPU once they all run;
 *   - a standby controller takes over from the leader killed with -9: time to lead, to list and resume, its RSS;
 *   - the uninstall step (`controller --remove-finalizers`) on every pod.
 * Checks: one done answer and one pod per event, one ready event per pod, no lifecycle id twice.
 * Writes bench/results/scale-<date>.json and regenerates BENCHMARKS.md (its "At scale" section).
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Cluster, cpuSeconds, findCluster, rssMiB, sleep } from "./lib/cluster.ts";
import { machine } from "./lib/facts.ts";
import { makeEvents, runOurs, senderAgent } from "./lib/load.ts";
import { type Runtime, type RunningService, serviceCommand, serviceEnv, startService } from "./lib/service.ts";
import { round, summarize } from "./lib/stats.ts";
import { makeRoomForPods } from "../test/support/cluster.ts";
import { writeReport } from "./report.ts";
import type { ScaleResults } from "./types.ts";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const { values: flags } = parseArgs({ options: { pods: { type: "string", default: "20000" }, runtime: { type: "string", default: "exe" }, concurrency: { type: "string", default: "32" } } });
const PODS = Number(flags.pods);
const CONCURRENCY = Number(flags.concurrency);
const PROBE = 300; // events per latency probe
const command = serviceCommand(repo, flags.runtime as Runtime);
if (!command) throw new Error(`no ${flags.runtime} build: run \`npm run build\` first`);
if (PODS < 4 * PROBE) throw new Error(`--pods must be at least ${4 * PROBE}`);

const startedAt = new Date();
const cluster = await Cluster.connect(findCluster(repo));
const log = (message: string) => console.error(`[scale ${Math.round((Date.now() - startedAt.getTime()) / 1000)}s] ${message}`);

await makeRoomForPods(cluster.kube, PODS);
const namespace = await cluster.createRoutedNamespace("bench-scale");

// The sink: every lifecycle event, by type and id.
const received = { ready: new Set<string>(), deleted: new Set<string>(), ids: new Map<string, number>() };
const sink = createServer((request, response) => {
  const type = String(request.headers["ce-type"] ?? "");
  const id = String(request.headers["ce-id"] ?? "");
  const subject = String(request.headers["ce-subject"] ?? "");
  received.ids.set(id, (received.ids.get(id) ?? 0) + 1);
  if (type.endsWith(".ready")) received.ready.add(subject);
  if (type.endsWith(".deleted")) received.deleted.add(subject);
  request.resume().on("end", () => response.writeHead(202).end());
});
await new Promise<void>((ok) => sink.listen(0, "127.0.0.1", ok));
const sinkUrl = `http://127.0.0.1:${(sink.address() as AddressInfo).port}/`;

const env = serviceEnv({ KUBECONFIG: cluster.info.kubeconfig, CLIENT_NAMESPACE: namespace, KUBE_TIMEOUT_MS: "30000" });
const listed: { pods: number; ms: number; at: number }[] = [];
const startController = () =>
  startService({ ...command, args: [...command.args, "controller"] }, { ...env, K_SINK: sinkUrl, CLIENT_LIFECYCLE_EVENTS: "true", CLIENT_READY_TIMEOUT_SECONDS: "0" }, 30_000, (line) => {
    if (line.includes('"client lifecycle: listed"')) listed.push({ ...JSON.parse(line), at: Date.now() });
  });
const leading = async (controller: RunningService) =>
  ((await (await fetch(`${controller.url}leader`)).json()) as { leading: boolean }).leading;
const until = async (what: string, ready: () => boolean | Promise<boolean>, timeoutMs: number) => {
  const deadline = Date.now() + timeoutMs;
  while (!(await ready())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
    await sleep(250);
  }
};

const service = await startService(command, env);
const leader = await startController();
await until("the first controller to lead", () => leading(leader), 30_000);
const agent = senderAgent(CONCURRENCY);
const checks: ScaleResults["checks"] = [];
const check = (name: string, ok: boolean, detail = "") => {
  checks.push({ name, ok, detail });
  if (!ok) log(`CHECK FAILED: ${name} ${detail}`);
};
let sent = 0;
const send = async (prefix: string, count: number, concurrency: number) => {
  const events = makeEvents(`/bench/scale/${namespace}`, prefix, count);
  const result = await runOurs(service.url, agent, events, concurrency, 2 * 3600_000);
  sent += count;
  check(`${prefix}: every event answered done`, result.done === count, `${result.done}/${count} (${result.failed} failed, ${result.lost} lost)`);
  return result;
};
// With the CPU the service and the API server spent per event meanwhile: whose time the latency is.
const latency = async (prefix: string, concurrency: number) => {
  const apiserver = cluster.componentPids().apiserver ?? 0;
  const before = [cpuSeconds(service.pid), cpuSeconds(apiserver)];
  const result = await send(prefix, PROBE, concurrency);
  const [serviceCpuMs, apiserverCpuMs] = [cpuSeconds(service.pid), cpuSeconds(apiserver)].map((after, i) => round(((after - before[i]!) * 1000) / PROBE, 2));
  const s = summarize([...result.latencyMs].filter(Number.isFinite));
  return { concurrency, p50: round(s.p50), p90: round(s.p90), p99: round(s.p99), eventsPerS: round(PROBE / (result.wallMs / 1000), 1), serviceCpuMs: serviceCpuMs!, apiserverCpuMs: apiserverCpuMs! };
};

log(`namespace ${namespace}; service and controller (${flags.runtime}) up; latency with no pods`);
const emptyLatency = [await latency("empty-c1", 1), await latency("empty-c16", 16)];

// Fill, sampling the leader every 10 s.
const samples: ScaleResults["samples"] = [];
const sample = () => samples.push({ s: round((Date.now() - startedAt.getTime()) / 1000, 0), pods: sent, ready: received.ready.size, controllerRssMiB: round(rssMiB(leader.pid).rss, 1), controllerCpuS: round(cpuSeconds(leader.pid), 1), serviceRssMiB: round(rssMiB(service.pid).rss, 1) });
const sampler = setInterval(() => {
  sample();
  const last = samples.at(-1)!;
  log(`${last.pods} events sent, ${last.ready} pods ready; controller ${last.controllerRssMiB} MiB, ${last.controllerCpuS} s CPU`);
}, 10_000);
const fillStarted = Date.now();
const controllerCpuBefore = cpuSeconds(leader.pid);
const fill = await send("fill", PODS - 4 * PROBE, CONCURRENCY);
const fillS = (Date.now() - fillStarted) / 1000;
// At size means settled: kwok has started every pod and the controller has caught up.
await until("a ready event for every pod so far", () => received.ready.size >= sent, 2 * 3600_000);
const allReadyS = (Date.now() - fillStarted) / 1000;
log(`filled in ${round(fillS, 0)} s, all ready after ${round(allReadyS, 0)} s; latency with ${sent} pods`);
const fullLatency = [await latency("full-c1", 1), await latency("full-c16", 16)];
await until("a ready event for every pod", () => received.ready.size >= PODS, 30 * 60_000);
clearInterval(sampler);
sample();
const controllerCpuFill = cpuSeconds(leader.pid) - controllerCpuBefore;
const idleBefore = cpuSeconds(leader.pid);
await sleep(60_000);
const controllerIdleCpuPerMin = cpuSeconds(leader.pid) - idleBefore;
const leaderRss = rssMiB(leader.pid);

// Hand-over: a standby joins, the leader dies without giving the Lease up.
log("standby joins; the leader is killed");
const standby = await startController();
await sleep(5_000);
check("the standby waits while the leader leads", !(await leading(standby)));
const standbyCpuBefore = cpuSeconds(standby.pid);
const killedAt = Date.now();
leader.child.kill("SIGKILL");
await until("the standby to lead", () => leading(standby), 60_000);
const takeoverMs = Date.now() - killedAt;
await until("the new leader to list its pods", () => listed.length >= 2, 10 * 60_000);
const resumed = listed.at(-1)!;
await sleep(10_000);
const standbyCpu = cpuSeconds(standby.pid) - standbyCpuBefore;
const standbyRss = rssMiB(standby.pid);
const pods = await cluster.clientPods(namespace);
check("one pod per event, none twice", pods.length === PODS && new Set(pods.map((pod) => pod.requestId)).size === PODS, `${pods.length} pods for ${PODS} events`);
check("every pod routed, none gated", pods.every((pod) => pod.routed && !pod.gated));
const twice = [...received.ids].filter(([, count]) => count > 1).length;
check("every lifecycle event delivered once per id", twice === 0, `${twice} ids twice`);

// Uninstall: controllers stopped, then finalizers removed, then the namespace deleted.
await standby.stop();
await service.stop();
const uninstallStarted = Date.now();
const uninstall = spawnSync(command.command, [...command.args, "controller", "--remove-finalizers"], { env, encoding: "utf8", timeout: 30 * 60_000 });
const uninstallS = (Date.now() - uninstallStarted) / 1000;
check("controller --remove-finalizers exits 0", uninstall.status === 0, uninstall.stderr.slice(-500));
const deletion = await cluster.deleteNamespace(namespace, 10 * 60_000);
agent.close();
sink.close();

const results: ScaleResults = {
  startedAt: startedAt.toISOString(),
  durationS: round((Date.now() - startedAt.getTime()) / 1000, 0),
  runtime: command.runtime,
  machine: machine(),
  pods: PODS,
  concurrency: CONCURRENCY,
  fill: { events: fill.events, seconds: round(fillS, 0), eventsPerS: round(fill.events / fillS, 1), allReadyS: round(allReadyS, 0) },
  latency: { empty: emptyLatency, full: fullLatency },
  controller: {
    rssMiB: round(leaderRss.rss, 1),
    peakRssMiB: round(leaderRss.hwm, 1),
    cpuPerPodMs: round((controllerCpuFill * 1000) / (PODS - 2 * PROBE), 2), // the pods made since the fill began
    idleCpuPerMinS: round(controllerIdleCpuPerMin, 2),
  },
  takeover: { toLeadMs: takeoverMs, listedPods: resumed.pods, listMs: resumed.ms, toResumeMs: resumed.at - killedAt, cpuS: round(standbyCpu, 1), rssMiB: round(standbyRss.rss, 1) },
  uninstall: { removeFinalizersS: round(uninstallS, 1), namespaceGoneS: deletion.goneAfterMs === null ? null : round(deletion.goneAfterMs / 1000, 0) },
  samples,
  checks,
};
const file = resolve(repo, `bench/results/scale-${results.startedAt.replace(/[:.]/g, "-").replace(/-\d+Z$/, "Z")}.json`);
mkdirSync(dirname(file), { recursive: true });
writeFileSync(file, JSON.stringify(results, null, 2) + "\n");
for (const written of writeReport(repo)) log(`wrote ${relative(repo, written)}`);
log(`wrote ${relative(repo, file)}`);
console.log(JSON.stringify({ ...results, samples: undefined }, null, 2));
process.exit(checks.every((c) => c.ok) ? 0 : 1);
