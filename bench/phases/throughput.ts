/**
 * Throughput and latency at each concurrency, every side in one interleaved run: the baseline (provisionClient in
 * a bare loop here), the shipped executable, the Node service, and Knative JobSink as a peer (when built). Each
 * side gets a fresh namespace and a warm-up, then the timed events run in blocks whose order alternates
 * (A B C D, D C B A, …) so that drift in the shared machine's load hits every side alike. Throughput = answered
 * events / summed block wall time; the block-by-block differences of the medians give a paired added latency.
 */
import type { ProvisionerOptions } from "../../src/provision/provisioner.ts";
import { cpuDelta, cpuSnapshot } from "../lib/cluster.ts";
import type { BenchRun } from "../lib/context.ts";
import { countJobs, installJobSinkApi, jobsinkBinary, type JobSinkPeer, startJobSink } from "../lib/jobsink.ts";
import { type BenchEvent, type LoadResult, makeEvents, runBaseline, runOurs, senderAgent } from "../lib/load.ts";
import { type CpuDelta, mergeCpu, mergeResults, perEvent, sideOf } from "../lib/measure.ts";
import type { RunningService } from "../lib/service.ts";
import { median, round, summarize } from "../lib/stats.ts";
import type { PeerSide, Side, ThroughputPoint } from "../types.ts";

/** "exe" and "node" are ours; "jobsink" is the peer. */
type SideName = "baseline" | "exe" | "node" | "jobsink";

export async function throughputPhase(run: BenchRun): Promise<void> {
  const sides: SideName[] = ["baseline"];
  if (run.command("exe")) sides.push("exe");
  else run.notes.push("throughput: dist/podgateway-provisioner does not exist (`npm run build`): the executable was not measured");
  sides.push("node");
  const jobsink = jobsinkBinary(run.clusterInfo);
  if (jobsink) {
    installJobSinkApi(run.repo, run.clusterInfo);
    sides.push("jobsink");
  } else {
    run.notes.push("throughput: no jobsink binary (PGW_JOBSINK_BIN, $KNATIVE_BIN_DIR/jobsink or $PGW_CACHE_DIR/bin/jobsink-dev/jobsink): JobSink was not measured");
  }
  for (const concurrency of run.settings.concurrencies) {
    const blockSize = Math.max(run.settings.blockEvents, 4 * concurrency);
    const blocks = Math.max(2, Math.round(run.settings.eventsPerPoint / blockSize));
    run.log(`throughput: concurrency ${concurrency}, ${sides.join(" / ")}: ${run.settings.warmupPerPoint} warm-up + ${blocks} interleaved blocks of ${blockSize} events per side`);
    const point = await throughputPoint(run, sides, concurrency, blocks, blockSize, jobsink);
    run.results.throughput.push(point);
    const line = (name: string, side: Side) => `${name} ${side.perSecond}/s p50 ${side.latencyMs.p50} p99 ${side.latencyMs.p99} ms, service CPU ${side.cpuMsPerEvent.service ?? "–"} ms/event`;
    run.log(`  ${line("baseline", point.baseline)} | ${line(point.oursRuntime ?? "ours", point.ours)}`);
    for (const [name, peer] of Object.entries(point.peers ?? {})) run.log(`  ${line(name, peer)}, ratio ${peer.ratio}`);
  }
}

interface Running {
  namespace: string;
  /** Sends one block; resolves with its result. */
  send: (events: BenchEvent[]) => Promise<LoadResult>;
  /** The side's own process, for its CPU. */
  pids: Record<string, number>;
  /** Stops the side's process (idempotent); its namespace stays until the point's pods or Jobs are counted. */
  stop: () => Promise<void>;
}

async function throughputPoint(run: BenchRun, sides: SideName[], concurrency: number, blocks: number, blockSize: number, jobsinkBin: string | undefined): Promise<ThroughputPoint> {
  const { settings } = run;
  const running = {} as Record<SideName, Running>;
  try {
    for (const side of sides) running[side] = await startSide(run, side, concurrency, jobsinkBin);

    const sent = Object.fromEntries(sides.map((side) => [side, [] as BenchEvent[]])) as Record<SideName, BenchEvent[]>;
    for (const side of sides) {
      const warmup = makeEvents(run.source, `tp-${side}-c${concurrency}-warm`, settings.warmupPerPoint);
      sent[side].push(...warmup);
      run.checkLoad(`${side} c=${concurrency} warm-up`, await running[side].send(warmup));
    }

    const acc = Object.fromEntries(sides.map((side) => [side, { results: [] as LoadResult[], cpu: [] as CpuDelta[], calls: {} as Record<string, number>, blockP50: [] as number[] }])) as Record<SideName, { results: LoadResult[]; cpu: CpuDelta[]; calls: Record<string, number>; blockP50: number[] }>;
    const clusterPids = run.cluster.componentPids();
    for (let block = 0; block < blocks; block++) {
      const order = block % 2 === 0 ? sides : [...sides].reverse();
      for (const side of order) {
        const events = makeEvents(run.source, `tp-${side}-c${concurrency}-b${block}`, blockSize);
        sent[side].push(...events);
        // API request counts cost the API server a 3 MB /metrics answer: taken around each side's first block only.
        const counting = block < 2 && Object.keys(acc[side].calls).length === 0;
        const callsBefore = counting ? await run.cluster.apiRequestCounts() : undefined;
        // The idle services' few timer ticks during other sides' blocks count as "other", not as anyone's cost.
        const pids = { ...clusterPids, ...running[side].pids };
        const before = cpuSnapshot(pids);
        const result = await running[side].send(events);
        acc[side].cpu.push(cpuDelta(before, cpuSnapshot(pids)));
        if (callsBefore) acc[side].calls = perEvent(callsBefore, await run.cluster.apiRequestCounts(), result.events - result.unsent);
        acc[side].results.push(result);
        acc[side].blockP50.push(summarize([...result.latencyMs].filter(Number.isFinite)).p50);
        run.checkLoad(`${side} c=${concurrency} block ${block}`, result);
      }
    }
    const disturbed = run.restarted(clusterPids, `concurrency ${concurrency}`);
    for (const side of sides) {
      await running[side].stop();
      await verify(run, side, running[side].namespace, sent[side], concurrency);
    }

    const measured = {} as Record<SideName, Side>;
    for (const side of sides) {
      measured[side] = { ...sideOf(mergeResults(acc[side].results), mergeCpu(acc[side].cpu)), apiCallsPerEvent: acc[side].calls, ...(disturbed ? { disturbed } : {}) };
    }
    const versus = (side: SideName): PeerSide => {
      const differences = acc[side].blockP50.map((p50, i) => p50 - acc.baseline.blockP50[i]!);
      return {
        ...measured[side],
        ratio: round(measured[side].perSecond / measured.baseline.perSecond, 3),
        addedP50Ms: round(measured[side].latencyMs.p50 - measured.baseline.latencyMs.p50, 2),
        addedP99Ms: round(measured[side].latencyMs.p99 - measured.baseline.latencyMs.p99, 2),
        pairedAddedP50Ms: round(median(differences), 2),
        blockAddedP50Ms: differences.map((d) => round(d, 2)),
      };
    };
    // "ours" is what ships: the executable when built, else the Node service.
    const oursName: SideName = sides.includes("exe") ? "exe" : "node";
    const { ratio, addedP50Ms, addedP99Ms, pairedAddedP50Ms, blockAddedP50Ms } = versus(oursName);
    const peers = Object.fromEntries(sides.filter((side) => side !== "baseline" && side !== oursName).map((side) => [side, versus(side)]));
    return {
      concurrency,
      blocks,
      blockSize,
      baseline: measured.baseline,
      ours: measured[oursName],
      oursRuntime: oursName,
      ratio,
      addedP50Ms,
      addedP99Ms,
      pairedAddedP50Ms,
      blockAddedP50Ms,
      peers,
    };
  } finally {
    for (const side of sides) await running[side]?.stop().catch(() => {});
    for (const side of sides) if (running[side]) await run.deleteNamespace(running[side].namespace);
  }
}

async function startSide(run: BenchRun, side: SideName, concurrency: number, jobsinkBin: string | undefined): Promise<Running> {
  const namespace = await run.createNamespace(`tp-${side}-c${concurrency}`);
  const budget = run.settings.pointBudgetMs;
  if (side === "baseline") {
    const provisioner: ProvisionerOptions = await run.baselineProvisioner(namespace);
    return { namespace, send: (events) => runBaseline(provisioner, events, concurrency, budget), pids: {}, stop: async () => {} };
  }
  const agent = senderAgent(concurrency);
  if (side === "jobsink") {
    const peer: JobSinkPeer = await startJobSink(run.repo, run.cluster, namespace, jobsinkBin!);
    run.live.add(peer);
    let stopped = false;
    return {
      namespace,
      pids: { jobsink: peer.pid, ...(peer.relayPid ? { relay: peer.relayPid } : {}) },
      send: (events) => runOurs(peer.url, agent, events, concurrency, budget, 30, Number.POSITIVE_INFINITY, "accepted"),
      stop: async () => {
        if (!stopped) {
          stopped = true;
          await agent.close().catch(() => {});
          const code = await peer.stop();
          run.live.delete(peer);
          run.check(`jobsink c=${concurrency} exited on SIGTERM`, code === 0 || code === null, `exit code ${code}\n${peer.tail()}`);
        }
      },
    };
  }
  const service: RunningService = await run.startOurs(namespace, run.command(side)!);
  let stopped = false;
  return {
    namespace,
    pids: { service: service.pid },
    send: (events) => runOurs(service.url, agent, events, concurrency, budget),
    stop: async () => {
      if (!stopped) {
        stopped = true;
        await agent.close().catch(() => {});
        await run.stopOurs(service);
      }
    },
  };
}

/** Ours and the baseline: one routed, released pod per event. JobSink: one Job and one Secret per event. */
async function verify(run: BenchRun, side: SideName, namespace: string, sent: BenchEvent[], concurrency: number): Promise<void> {
  if (side !== "jobsink") {
    await run.verifyPods(`${side} c=${concurrency}`, namespace, sent);
    return;
  }
  const counted = await countJobs(run.cluster, namespace, sent);
  run.check(`jobsink c=${concurrency}: one Job and one Secret per event`, counted.jobs === sent.length && counted.secrets === sent.length,
    `events ${sent.length}, jobs ${counted.jobs}, secrets ${counted.secrets}`);
}
