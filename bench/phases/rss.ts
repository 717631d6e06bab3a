/** RSS: idle, then after each checkpoint of events, for the single executable and the Node service. */
import { cpuSeconds, rssMiB, sleep } from "../lib/cluster.ts";
import type { BenchRun } from "../lib/context.ts";
import { type BenchEvent, makeEvents, runOurs, senderAgent } from "../lib/load.ts";
import type { ServiceCommand } from "../lib/service.ts";
import { round } from "../lib/stats.ts";
import type { RssResult } from "../types.ts";

/**
 * The ways the service can run whose memory we compare: the shipped single executable, which the memory targets
 * are judged against, and the Node service as `npm start` runs it. Skipped variants come back with a reason.
 */
function rssVariants(run: BenchRun): { variants: { name: string; command: ServiceCommand }[]; skipped: { variant: string; reason: string }[] } {
  const variants: { name: string; command: ServiceCommand }[] = [];
  const skipped: { variant: string; reason: string }[] = [];
  const exe = run.command("exe");
  if (exe) variants.push({ name: "exe", command: exe });
  else skipped.push({ variant: "exe", reason: "dist/podgateway-provisioner does not exist: run `npm run build` first" });
  variants.push({ name: "node", command: run.command("node")! });
  return { variants, skipped };
}

export async function rssPhase(run: BenchRun): Promise<void> {
  const { variants, skipped } = rssVariants(run);
  run.results.rssSkipped = skipped;
  run.results.rssVariants = [];
  for (const entry of skipped) run.log(`RSS: skipping ${entry.variant}: ${entry.reason}`);
  for (const variant of variants) {
    const measured = await rssOf(run, variant.name, variant.command);
    run.results.rssVariants.push(measured);
    if (variant.name === "node") run.results.rss = measured; // schema 1 field: the Node service, as in older results
  }
}

async function rssOf(run: BenchRun, name: string, command: ServiceCommand): Promise<RssResult> {
  run.log(`RSS of ${name}: idle, then after ${run.settings.rssCheckpoints.join(" and ")} events`);
  return await run.inNamespace("rss", async (namespace) => {
    const service = await run.startOurs(namespace, command);
    const agent = senderAgent(run.settings.rssConcurrency);
    const sent: BenchEvent[] = [];
    const samples: { events: number; rssMiB: number }[] = [];
    const pids = run.cluster.componentPids();
    let rss: RssResult;
    try {
      await sleep(3000);
      const idle = rssMiB(service.pid);
      const cpuAtIdle = cpuSeconds(service.pid);
      samples.push({ events: 0, rssMiB: round(idle.rss, 1) });
      run.log(`  idle: ${idle.rss.toFixed(1)} MiB`);
      const checkpoints: { events: number; rssMiB: number }[] = [];
      let total = 0;
      let sampler: NodeJS.Timeout | undefined;
      for (const checkpoint of run.settings.rssCheckpoints) {
        const events = makeEvents(run.source, `rss-${service.pid}-${total}`, checkpoint - total);
        sent.push(...events);
        const base = total;
        sampler = setInterval(() => {
          const done = (service.outcomes.done ?? 0);
          samples.push({ events: Math.min(done, base + events.length), rssMiB: round(rssMiB(service.pid).rss, 1) });
        }, 1000);
        const result = await runOurs(service.url, agent, events, run.settings.rssConcurrency, run.settings.bigBudgetMs);
        clearInterval(sampler);
        run.checkLoad(`RSS phase (${name}) up to ${checkpoint} events`, result);
        total = checkpoint;
        await sleep(2000);
        const memory = rssMiB(service.pid);
        checkpoints.push({ events: checkpoint, rssMiB: round(memory.rss, 1) });
        samples.push({ events: checkpoint, rssMiB: round(memory.rss, 1) });
        run.log(`  after ${checkpoint} events: ${memory.rss.toFixed(1)} MiB (peak so far ${memory.hwm.toFixed(1)} MiB)`);
      }
      // The service's own CPU over all the events (the 2 s pauses after each checkpoint included: idle, ~0).
      const cpuMsPerEvent = round(((cpuSeconds(service.pid) - cpuAtIdle) * 1000) / Math.max(1, total), 3);
      run.restarted(pids, `RSS phase (${name})`);
      const peak = rssMiB(service.pid).hwm;
      const first = checkpoints[0];
      const last = checkpoints[checkpoints.length - 1];
      rss = {
        runtime: command.runtime,
        variant: name,
        command: run.commandLine(command),
        idleMiB: round(idle.rss, 1),
        checkpoints,
        peakMiB: round(peak, 1),
        changeFirstToLastPct: first && last && checkpoints.length > 1 ? round(((last.rssMiB - first.rssMiB) / first.rssMiB) * 100, 1) : null,
        serviceCpuMsPerEvent: cpuMsPerEvent,
        samples,
      };
    } finally {
      await agent.close();
      await run.stopOurs(service);
    }
    await run.verifyPods(`RSS phase (${name})`, namespace, sent);
    return rss;
  });
}
