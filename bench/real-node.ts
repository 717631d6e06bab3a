/**
 * `node bench/real-node.ts [--clients=20]`: what a user waits for on a real node (a bench mode, not CI).
 *
 * On the local cluster (`npm run cluster -- up`, real node on): deploy/ as the tests apply it, the provisioner (the
 * single executable, `PGW_TEST_SERVICE=exe` is set here) with the real node's client pod template, and the sink.
 * `--clients` pending events for gateway foo go to the broker one at a time (cold: no pool; the images are pulled
 * once before), and each client pod is followed until Ready, polled every 20 ms:
 *   sent to the broker → created (the pod exists: provisioned, routed, gated) → scheduled (nodeName set) → sandbox
 *   (pod IP: the sandbox and its network exist) → gateway-init done (terminated, exit 0) → Ready; and accepted (the
 *   broker's 202, which the synchronous in-memory channel gives once the provisioner has answered).
 * Then the node's components idle for 60 s with every client running: their RSS and CPU.
 * Writes bench/results/real-node-<date>.json; BENCHMARKS.md's "Real node" section comes from the newest one.
 */
import "./lib/exe.ts";
import { readdirSync, readlinkSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { Pod } from "kubernetes-types/core/v1";
import { clientPodName } from "../src/provision/client-pod.ts";
import { Cluster, cpuSeconds, findCluster, rssMiB, sleep } from "./lib/cluster.ts";
import { machine } from "./lib/facts.ts";
import { percentile, round, summarize } from "./lib/stats.ts";
import { getPodOrNull } from "../test/support/cluster.ts";
import { CLIENT_NS, sendToBroker, startFlow } from "../test/support/knative.ts";
import { REAL_NODE_TEMPLATE } from "../test/support/real-node.ts";
import { saveResults } from "./report.ts";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const { values: flags } = parseArgs({ options: { clients: { type: "string", default: "20" } } });
const CLIENTS = Number(flags.clients);
const cluster = await Cluster.connect(findCluster(repo));

/**
 * The moments (ms since the event was sent) a client passes each phase. `accepted` (the broker's 202) is apart:
 * the in-memory channel is synchronous, so it comes once the provisioner has answered, after the pod exists.
 */
interface Timeline { sent: number; accepted: number; created: number; scheduled: number; sandbox: number; gatewayInit: number; ready: number }
const PHASES = ["sent", "created", "scheduled", "sandbox", "gatewayInit", "ready"] as const;

function reached(pod: Pod | null): Partial<Record<keyof Timeline, boolean>> {
  const init = pod?.status?.initContainerStatuses?.find((s) => s.name === "gateway-init");
  return {
    created: pod !== null,
    scheduled: Boolean(pod?.spec?.nodeName),
    sandbox: Boolean(pod?.status?.podIP),
    gatewayInit: init?.state?.terminated?.exitCode === 0,
    ready: pod?.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") === true,
  };
}

async function followOne(i: number, stamp: string): Promise<Timeline> {
  const event = { id: `bench-real-${stamp}-${i}`, source: "/bench/real-node", type: "io.podgateway.client.pending", data: { gateway_name: "foo" } };
  const name = clientPodName(event);
  const t0 = performance.now();
  const timeline: Partial<Timeline> = { sent: 0 };
  const sent = sendToBroker(event).then(async (response) => {
    if (response.status !== 202) throw new Error(`broker answered ${response.status}: ${await response.text()}`);
    timeline.accepted = performance.now() - t0;
  });
  while (timeline.ready === undefined) {
    if (performance.now() - t0 > 180_000) throw new Error(`client ${name} not Ready after 180 s: ${JSON.stringify(timeline)}`);
    const now = performance.now() - t0;
    for (const [phase, yes] of Object.entries(reached(await getPodOrNull(CLIENT_NS, name)))) {
      if (yes) timeline[phase as keyof Timeline] ??= now;
    }
    await sleep(20);
  }
  await sent;
  return timeline as Timeline;
}

/** The node's host processes by component (the pid files cluster.sh keeps), and the shims. */
function nodeProcesses(): Record<string, number[]> {
  const components = cluster.componentPids();
  const pids: Record<string, number[]> = Object.fromEntries(
    ["containerd", "kubelet", "kube-proxy", "coredns", "registry", "node-net"].map((c) => [c, components[c] ? [components[c]!] : []]),
  );
  pids.shims = [];
  for (const p of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      if (readlinkSync(`/proc/${p}/exe`).endsWith("/containerd-shim-runc-v2")) pids.shims.push(Number(p));
    } catch { /* gone */ }
  }
  return pids;
}

/** RSS (MiB) and CPU (ms per second) of each component over `seconds` of idling. */
async function idleCost(seconds: number) {
  const pids = nodeProcesses();
  const cpu = (list: number[]) => list.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  const startCpu = new Map(Object.values(pids).flat().map((pid) => [pid, cpuSeconds(pid)]));
  await sleep(seconds * 1000);
  // a process that ended meanwhile (a shim of a pod an earlier run left terminating) counts for neither end
  const alive = (pid: number) => Number.isFinite(cpuSeconds(pid));
  return Object.fromEntries(Object.entries(pids).map(([c, all]) => {
    const list = all.filter(alive);
    const start = list.reduce((sum, pid) => sum + (startCpu.get(pid) ?? 0), 0);
    return [c, {
      processes: list.length,
      rssMiB: round(list.reduce((sum, pid) => sum + rssMiB(pid).rss, 0), 1),
      cpuMsPerS: round(((cpu(list) - start) * 1000) / seconds, 2),
    }];
  }));
}

const startedAt = new Date();
const flow = await startFlow(undefined, { CLIENT_POD_TEMPLATE: REAL_NODE_TEMPLATE });
const stamp = startedAt.toISOString().replace(/[:.]/g, "-");
try {
  // one client first, apart: on a fresh node it pulls the images, which later clients do not
  const first = await followOne(-1, stamp);
  const timelines: Timeline[] = [];
  for (let i = 0; i < CLIENTS; i++) timelines.push(await followOne(i, stamp));
  const phase = (from: keyof Timeline, to: keyof Timeline) => {
    const values = timelines.map((t) => t[to] - t[from]);
    return { ...summarize(values), p95: percentile([...values].sort((a, b) => a - b), 95) };
  };
  const steps = PHASES.slice(1).map((to, k) => ({ from: PHASES[k]!, to, ms: phase(PHASES[k]!, to) }));
  const idle = await idleCost(60);
  const results = {
    startedAt: startedAt.toISOString(),
    machine: machine(),
    clients: CLIENTS,
    firstClientMs: Object.fromEntries(Object.entries(first).map(([k, v]) => [k, round(v, 0)])),
    sentToAcceptedMs: phase("sent", "accepted"),
    sentToReadyMs: phase("sent", "ready"),
    steps,
    timelines: timelines.map((t) => Object.fromEntries(Object.entries(t).map(([k, v]) => [k, round(v, 0)]))),
    idle,
  };
  console.log(JSON.stringify({ sentToReady: results.sentToReadyMs, steps: steps.map((s) => [s.to, s.ms.p50, s.ms.p90]) }, null, 1));
  saveResults(repo, "real-node", stamp, results);
} finally {
  await flow.stop();
}
