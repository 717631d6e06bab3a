/**
 * `node bench/warm-pool.ts [--pool=16] [--rounds=20]`: what a sender waits for with the warm pool against without it,
 * on the real node (a bench mode, not CI). On the local cluster (`npm run cluster -- up`, real node on): three
 * replicas of the service and one controller, all the single executable (`PGW_TEST_SERVICE=exe`; `npm run build`),
 * `--warm-pool foo=<pool>`, the client template of cluster/deploy-warm-pool (its readiness probe goes through the
 * tunnel). Events are POSTed to the replicas in turn, as a broker's dispatcher would.
 *   warm: event → done, with the pool full before each round (c = 1: `--rounds` rounds of one event; c = 16: rounds of
 *         16 at once); the claimed client is checked Ready and routed at the answer.
 *   cold: a fourth replica without the pool, same gateway and template: event → done → client Ready (polled every
 *         20 ms), c = 1 and one round of c = 16.
 *   API requests per event on each path, with the controller stopped (no refills in the count), from the API server's
 *   own apiserver_request_total; the refill rate (an empty pool of `--pool` to all Ready); the idle cost of a full pool.
 * Writes bench/results/warm-pool-<date>.json; BENCHMARKS.md's "Warm pool" section comes from the newest one.
 */
import "./lib/exe.ts";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { CloudEvent, HTTP } from "cloudevents";
import type { Pod } from "kubernetes-types/core/v1";
import { Cluster, cpuSeconds, findCluster, rssMiB, sleep } from "./lib/cluster.ts";
import { machine } from "./lib/facts.ts";
import { percentile, round, summarize } from "./lib/stats.ts";
import { adminClient, getPodOrNull, listPods, routedNamespace } from "../test/support/cluster.ts";
import { containerPids, routeNamespace } from "../test/support/real-node.ts";
import { type RunningService, startController, startService } from "../test/support/service.ts";
import { saveResults } from "./report.ts";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const { values: flags } = parseArgs({ options: { pool: { type: "string", default: "16" }, rounds: { type: "string", default: "20" } } });
const POOL = Number(flags.pool);
const ROUNDS = Number(flags.rounds);
const TEMPLATE = resolve(repo, "cluster/deploy-warm-pool/client-pod-template.yaml");
const MEMBERS = "app.kubernetes.io/managed-by=podgateway-provisioner,podgateway.io/pool=member";
const cluster = await Cluster.connect(findCluster(repo));

const isReady = (pod: Pod | null) => pod?.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") === true;
const stats = (values: number[]) => ({ ...summarize(values), p95: percentile([...values].sort((a, b) => a - b), 95) });

/** One pending event to a replica: ms to its answer, and the answer's pod and path. */
async function send(url: string, id: string, gateway: string) {
  const message = HTTP.binary(new CloudEvent({ id, source: "/bench/warm-pool", type: "io.podgateway.client.pending", data: { gateway_name: gateway } }));
  const t0 = performance.now();
  const response = await fetch(url, { method: "POST", headers: message.headers as Record<string, string>, body: message.body as string });
  const body = await response.text();
  const ms = performance.now() - t0;
  if (response.headers.get("ce-type") !== "io.podgateway.client.scheduling.done") throw new Error(`${id}: ${response.status} ${body}`);
  const data = JSON.parse(body) as { pod_name: string; served_from: string };
  return { ms, t0, pod: data.pod_name, servedFrom: data.served_from };
}

let namespace: Awaited<ReturnType<typeof routedNamespace>>;
const readyMembers = async () => (await listPods(namespace.name, MEMBERS)).filter((pod) => isReady(pod) && !pod.metadata?.deletionTimestamp).length;
async function poolFull(timeoutMs = 300_000): Promise<number> {
  const t0 = performance.now();
  while ((await readyMembers()) < POOL) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`the pool did not fill within ${timeoutMs} ms`);
    await sleep(50);
  }
  return performance.now() - t0;
}
/** Deletes served clients (the real node has room for a few dozen pods). */
async function release(pods: string[]) {
  const kube = await adminClient();
  await Promise.all(pods.map((pod) => kube.performRequest({ method: "DELETE", path: `/api/v1/namespaces/${namespace.name}/pods/${pod}` }).catch(() => {})));
}

/** `rounds` rounds of `c` events at once for a pooled gateway, the pool full before each. */
async function warm(services: RunningService[], c: number, rounds: number, stamp: string) {
  const samples: number[] = [];
  let misses = 0;
  for (let r = 0; r < rounds; r++) {
    await poolFull();
    await sleep(300); // every replica's watch has seen the last member turn Ready
    const answers = await Promise.all(Array.from({ length: c }, (_, i) => send(services[(r * c + i) % services.length]!.url, `warm-${c}-${stamp}-${r}-${i}`, "foo")));
    for (const answer of answers) {
      if (answer.servedFrom !== "pool") misses++;
      else samples.push(answer.ms);
    }
    const served = await Promise.all(answers.map((answer) => getPodOrNull(namespace.name, answer.pod)));
    if (served.some((pod) => !isReady(pod))) throw new Error("a warm client was not Ready at its answer");
    await release(answers.map((answer) => answer.pod));
  }
  return { ...stats(samples), misses };
}

/** `c` events at once to a replica without the pool: ms to the answer, and to the client Ready. */
async function cold(services: RunningService[], c: number, rounds: number, stamp: string) {
  const done: number[] = [];
  const ready: number[] = [];
  for (let r = 0; r < rounds; r++) {
    await Promise.all(Array.from({ length: c }, async (_, i) => {
      const answer = await send(services[i % services.length]!.url, `cold-${c}-${stamp}-${r}-${i}`, "foo");
      done.push(answer.ms);
      while (!isReady(await getPodOrNull(namespace.name, answer.pod))) {
        if (performance.now() - answer.t0 > 180_000) throw new Error(`${answer.pod} not Ready in 180 s`);
        await sleep(20);
      }
      ready.push(performance.now() - answer.t0);
      await release([answer.pod]);
    }));
  }
  return { doneMs: stats(done), readyMs: stats(ready) };
}

/** API requests per event by verb and resource, with no controller running: each path's own calls. */
async function apiPerEvent(services: RunningService[], gateway: string, events: number, stamp: string) {
  const before = await cluster.apiRequestCounts();
  const pods: string[] = [];
  for (let i = 0; i < events; i++) pods.push((await send(services[i % services.length]!.url, `api-${gateway}-${stamp}-${i}`, gateway)).pod);
  const after = await cluster.apiRequestCounts();
  await release(pods);
  const perEvent: Record<string, number> = {};
  for (const [key, count] of Object.entries(after)) {
    const delta = count - (before[key] ?? 0);
    // the GET of /metrics itself is no resource; watches re-established meanwhile would show as WATCH
    if (delta > 0) perEvent[key] = round(delta / events, 2);
  }
  return perEvent;
}

const startedAt = new Date();
const stamp = startedAt.toISOString().replace(/[:.]/g, "-").toLowerCase();
namespace = await routedNamespace("bench-warm-pool");
routeNamespace(namespace.name);
const env = { CLIENT_NAMESPACE: namespace.name, WARM_POOL: `foo=${POOL}`, CLIENT_POD_TEMPLATE: TEMPLATE };
const services = await Promise.all([0, 1, 2].map(() => startService(env)));
const { WARM_POOL: _, ...coldEnv } = env;
const coldService = await startService(coldEnv);
let controller = await startController(env);
try {
  const fillMs = await poolFull();
  // one cold client first, apart: on a fresh node it pulls the images
  await cold([coldService], 1, 1, `${stamp}-first`);
  const warm1 = await warm(services, 1, ROUNDS, stamp);
  const warm16 = await warm(services, Math.min(16, POOL), Math.max(2, Math.round(ROUNDS / 4)), stamp);
  const cold1 = await cold([coldService], 1, Math.max(4, Math.round(ROUNDS / 2)), stamp);
  const cold16 = await cold([coldService], 16, 1, stamp);

  await poolFull();
  // the idle cost of a full pool: its members' containers, the controller, the services (30 s)
  const members = containerPids(namespace.name);
  const processes = { controller: [controller.process.pid!], services: services.map((s) => s.process.pid!), members: members.map((m) => m.pid) };
  const cpuBefore = Object.fromEntries(Object.entries(processes).map(([k, pids]) => [k, pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0)]));
  await sleep(30_000);
  const idle = Object.fromEntries(Object.entries(processes).map(([k, pids]) => [k, {
    processes: pids.length,
    rssMiB: round(pids.reduce((sum, pid) => sum + rssMiB(pid).rss, 0), 1),
    cpuMsPerS: round(((pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0) - cpuBefore[k]!) * 1000) / 30, 2),
  }]));

  await controller.stop();
  const api = { warm: await apiPerEvent(services, "foo", Math.min(8, POOL), stamp), cold: await apiPerEvent([coldService], "foo", 8, stamp) };
  controller = await startController(env);

  const results = {
    startedAt: startedAt.toISOString(),
    machine: machine(),
    pool: POOL,
    replicas: services.length,
    refill: { members: POOL, fillMs: round(fillMs, 0), membersPerS: round(POOL / (fillMs / 1000), 2) },
    warm: { c1: warm1, c16: warm16 },
    cold: { c1: cold1, c16: cold16 },
    apiPerEvent: api,
    idle,
  };
  console.log(JSON.stringify({ warm: results.warm, cold: results.cold, api, refill: results.refill }, null, 1));
  saveResults(repo, "warm-pool", stamp, results);
} finally {
  await Promise.all([...services, coldService, controller].map((process) => process.stop()));
  await namespace.remove();
}
