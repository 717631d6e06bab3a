/**
 * Fresh processes: what a new revision pod does when Knative scales up from zero. For each run and concurrency,
 * every side — the single executable, and Knative JobSink as the peer — is started as a new process, timed from
 * exec to its first answer, sent a few warm-up events, then the timed events; its own CPU per timed event comes
 * from /proc. Sides are interleaved (exe, jobsink, then jobsink, exe in the next run) so drift in the shared
 * machine's load hits both alike. The throughput phase's long-lived processes hide this cost: a fresh runtime
 * has not compiled its hot path yet.
 */
import { cpuDelta, cpuSeconds, cpuSnapshot } from "../lib/cluster.ts";
import type { BenchRun } from "../lib/context.ts";
import { countJobs, installJobSinkApi, jobsinkBinary, startJobSink } from "../lib/jobsink.ts";
import { type BenchEvent, type LoadResult, makeEvents, runOurs, senderAgent } from "../lib/load.ts";
import { median, round, summarize } from "../lib/stats.ts";
import type { FreshResult, FreshRun } from "../types.ts";

type SideName = "exe" | "jobsink";

/** A side's process, started: when it was exec'd, where to send and what answer to expect, how to stop it. */
interface Started {
  pid: number;
  execAt: number;
  url: string;
  expect: "done" | "accepted";
  stop: () => Promise<void>;
}

export async function freshPhase(run: BenchRun): Promise<void> {
  const { freshRuns, freshConcurrencies, freshWarmups, freshEvents } = run.settings;
  const result: FreshResult = { warmupEvents: freshWarmups, events: freshEvents, runs: [], summary: [], execToFirstAnswerMs: {}, skipped: [] };
  run.results.fresh = result;
  const sides: SideName[] = [];
  if (run.command("exe")) sides.push("exe");
  else result.skipped.push({ side: "exe", reason: "dist/podgateway-provisioner does not exist: run `npm run build` first" });
  const jobsink = jobsinkBinary(run.clusterInfo);
  if (jobsink) {
    installJobSinkApi(run.repo, run.clusterInfo);
    sides.push("jobsink");
  } else {
    result.skipped.push({ side: "jobsink", reason: "no jobsink binary (PGW_JOBSINK_BIN, $KNATIVE_BIN_DIR/jobsink or $PGW_CACHE_DIR/bin/jobsink-dev/jobsink)" });
  }
  for (const skipped of result.skipped) run.log(`fresh processes: skipping ${skipped.side}: ${skipped.reason}`);
  if (!sides.length) return;
  run.log(`fresh processes: ${sides.join(" / ")}, ${freshRuns} run(s) at c = ${freshConcurrencies.join(" / ")}: exec → first answer, ${freshWarmups} warm-up + ${freshEvents} timed events per process`);

  const namespaces = {} as Record<SideName, string>;
  const sent = Object.fromEntries(sides.map((side) => [side, [] as BenchEvent[]])) as Record<SideName, BenchEvent[]>;
  try {
    for (const side of sides) namespaces[side] = await run.createNamespace(`fresh-${side}`);
    for (let attempt = 0; attempt < freshRuns; attempt++) {
      for (const concurrency of freshConcurrencies) {
        for (const side of attempt % 2 === 0 ? sides : [...sides].reverse()) {
          const [warmup, timed] = [
            makeEvents(run.source, `fresh-${side}-r${attempt}-c${concurrency}-warm`, freshWarmups),
            makeEvents(run.source, `fresh-${side}-r${attempt}-c${concurrency}`, freshEvents),
          ];
          sent[side].push(...warmup, ...timed);
          const measured = await freshProcess(run, side, namespaces[side], jobsink, attempt, concurrency, warmup, timed);
          result.runs.push(measured);
          run.log(`fresh ${side} c=${concurrency} #${attempt}: first answer ${measured.execToFirstAnswerMs} ms, own CPU ${measured.cpuMsPerEvent} ms/event, ${measured.perSecond}/s`);
        }
      }
    }
    if (namespaces.exe) await run.verifyPods("fresh exe", namespaces.exe, sent.exe);
    if (namespaces.jobsink) {
      const counted = await countJobs(run.cluster, namespaces.jobsink, sent.jobsink);
      run.check("fresh jobsink: one Job and one Secret per event", counted.jobs === sent.jobsink.length && counted.secrets === sent.jobsink.length,
        `events ${sent.jobsink.length}, jobs ${counted.jobs}, secrets ${counted.secrets}`);
    }
  } finally {
    for (const side of sides) if (namespaces[side]) await run.deleteNamespace(namespaces[side]);
  }
  summarizeFresh(result, sides, freshConcurrencies);
}

/** One fresh process: start, first answer, warm-up, timed events; stopped whatever happens. */
async function freshProcess(run: BenchRun, side: SideName, namespace: string, jobsinkBin: string | undefined, attempt: number, concurrency: number, warmup: BenchEvent[], timed: BenchEvent[]): Promise<FreshRun> {
  const what = `fresh ${side} c=${concurrency} #${attempt}`;
  const started = side === "exe" ? await startExe(run, namespace) : await startPeer(run, namespace, jobsinkBin!);
  // New connections, as a new pod gets.
  const agent = senderAgent(concurrency);
  const send = (events: BenchEvent[], senders: number): Promise<LoadResult> =>
    runOurs(started.url, agent, events, senders, run.settings.pointBudgetMs, 30, Number.POSITIVE_INFINITY, started.expect);
  try {
    // The first answer is the first warm-up event, alone: what the pod's first request meets.
    const first = await send(warmup.slice(0, 1), 1);
    const answeredAt = performance.now();
    const startCpuMs = cpuSeconds(started.pid) * 1000;
    run.checkLoad(`${what} first event`, first);
    run.checkLoad(`${what} warm-up`, await send(warmup.slice(1), concurrency));
    const pids = { own: started.pid };
    const before = cpuSnapshot(pids);
    const load = await send(timed, concurrency);
    const cpu = cpuDelta(before, cpuSnapshot(pids));
    run.checkLoad(what, load);
    const latency = summarize([...load.latencyMs].filter(Number.isFinite));
    const answered = Math.max(1, load.events - load.unsent);
    return {
      side,
      run: attempt,
      concurrency,
      execToFirstAnswerMs: round(answeredAt - started.execAt, 1),
      startCpuMs: round(startCpuMs, 0),
      cpuMsPerEvent: round(((cpu.processes.own ?? Number.NaN) * 1000) / answered, 3),
      perSecond: round(load.done / (load.wallMs / 1000), 1),
      latencyMs: { p50: round(latency.p50, 2), p99: round(latency.p99, 2) },
      otherCpuUtilisation: round(cpu.other / (load.wallMs / 1000), 2),
    };
  } finally {
    await agent.close().catch(() => {});
    await started.stop();
  }
}

async function startExe(run: BenchRun, namespace: string): Promise<Started> {
  const service = await run.startOurs(namespace, run.command("exe")!);
  return { pid: service.pid, execAt: service.spawnedAt, url: service.url, expect: "done", stop: () => run.stopOurs(service) };
}

async function startPeer(run: BenchRun, namespace: string, binary: string): Promise<Started> {
  const peer = await startJobSink(run.repo, run.cluster, namespace, binary);
  run.live.add(peer);
  return {
    pid: peer.pid,
    execAt: peer.execAt,
    url: peer.url,
    expect: "accepted",
    stop: async () => {
      const code = await peer.stop();
      run.live.delete(peer);
      run.check("fresh jobsink exited on SIGTERM", code === 0 || code === null, `exit code ${code}\n${peer.tail()}`);
    },
  };
}

function summarizeFresh(result: FreshResult, sides: SideName[], concurrencies: number[]): void {
  for (const side of sides) {
    const mine = result.runs.filter((entry) => entry.side === side);
    const first = summarize(mine.map((entry) => entry.execToFirstAnswerMs));
    result.execToFirstAnswerMs[side] = { n: first.n, median: round(first.p50, 1), min: round(first.min, 1), max: round(first.max, 1) };
    for (const concurrency of concurrencies) {
      const runs = mine.filter((entry) => entry.concurrency === concurrency);
      const cpu = summarize(runs.map((entry) => entry.cpuMsPerEvent));
      result.summary.push({
        side,
        concurrency,
        runs: runs.length,
        cpuMsPerEvent: { median: round(cpu.p50, 3), min: round(cpu.min, 3), max: round(cpu.max, 3) },
        perSecond: round(median(runs.map((entry) => entry.perSecond)), 1),
        latencyP50Ms: round(median(runs.map((entry) => entry.latencyMs.p50)), 2),
      });
    }
  }
}
