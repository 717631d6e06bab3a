/** A burst of distinct events released at once: time to drain, pods, duplicates, lost. */
import { cpuDelta, cpuSnapshot } from "../lib/cluster.ts";
import type { BenchRun } from "../lib/context.ts";
import { type LoadResult, makeEvents, runOurs, senderAgent } from "../lib/load.ts";
import { type CpuDelta, sideOf } from "../lib/measure.ts";
import type { BurstResult } from "../types.ts";

export async function burstPhase(run: BenchRun): Promise<void> {
  run.log(`burst: ${run.settings.burstEvents} distinct events released at once to ${run.settings.burstSenders} concurrent senders`);
  await run.inNamespace("burst", async (namespace) => {
    // What ships: the executable when built, else the Node service.
    const service = await run.startOurs(namespace, run.command("exe") ?? run.command("node")!);
    const agent = senderAgent(run.settings.burstSenders);
    const events = makeEvents(run.source, "burst", run.settings.burstEvents);
    let result: LoadResult;
    let cpu: CpuDelta;
    try {
      const pids = { ...run.cluster.componentPids(), service: service.pid };
      const before = cpuSnapshot(pids);
      // Like a broker: keep redelivering (honouring Retry-After) for up to the retry window, however many 429s.
      result = await runOurs(service.url, agent, events, run.settings.burstSenders, run.settings.bigBudgetMs, Number.MAX_SAFE_INTEGER, run.settings.burstRetryWindowMs);
      cpu = cpuDelta(before, cpuSnapshot(pids));
      run.restarted(pids, "burst");
    } finally {
      await agent.close();
      await run.stopOurs(service);
    }
    run.checkLoad("burst", result);
    const pods = await run.verifyPods("burst", namespace, events);
    const withPod = new Set(pods.requestIds);
    const lost = events.filter((event, index) => !result.answered[index] || !withPod.has(event.request.id)).length;
    const side = sideOf(result, cpu);
    const burst: BurstResult = {
      events: result.events,
      senders: run.settings.burstSenders,
      drainMs: side.wallMs,
      perSecond: side.perSecond,
      done: result.done,
      podsCreated: pods.pods,
      duplicates: pods.duplicates,
      lost,
      retries: result.retries,
      maxAttempts: result.maxAttemptsUsed,
      retryWindowS: run.settings.burstRetryWindowMs / 1000,
      latencyMs: side.latencyMs,
      cpuMsPerEvent: side.cpuMsPerEvent,
    };
    run.results.burst = burst;
    run.log(`  drained in ${burst.drainMs} ms (${burst.perSecond}/s), pods ${burst.podsCreated}, duplicates ${burst.duplicates}, lost ${burst.lost}, retries ${JSON.stringify(burst.retries)}`);
  });
}
