/** Cold start: exec → first event answered, for Node, Deno and the single executable, interleaved. */
import type { BenchRun } from "../lib/context.ts";
import { type BenchEvent, makeEvents, runOurs, senderAgent } from "../lib/load.ts";
import { rssMiB } from "../lib/cluster.ts";
import type { Runtime } from "../lib/service.ts";
import { round, summarize } from "../lib/stats.ts";
import type { ColdRun } from "../types.ts";

export async function coldStartPhase(run: BenchRun): Promise<void> {
  run.log("cold start: exec → first event answered");
  const runtimes: Runtime[] = ["node", "deno", "exe"];
  const commands = runtimes.map((runtime) => ({ runtime, command: run.command(runtime, []) }));
  for (const { runtime, command } of commands) {
    if (!command) {
      const reason = runtime === "exe"
        ? "dist/podgateway-provisioner does not exist: run `npm run build` first"
        : `node_modules/.bin/${runtime} is missing: run \`npm ci\``;
      run.results.coldStart.skipped.push({ runtime, reason });
      run.log(`cold start: skipping ${runtime}: ${reason}`);
    }
  }
  const available = commands.filter((entry) => entry.command);
  await run.inNamespace("cold", async (namespace) => {
    const answered: BenchEvent[] = [];
    const total = run.settings.coldWarmups + run.settings.coldRuns;
    // Interleaved (node, deno, exe, node, ...) so drift in the machine's load hits every runtime alike.
    for (let attempt = 0; attempt < total; attempt++) {
      for (const { runtime, command } of available) {
        const [event] = makeEvents(run.source, `cold-${runtime}-${attempt}`, 1);
        const warmup = attempt < run.settings.coldWarmups;
        const agent = senderAgent(1);
        const service = await run.startOurs(namespace, command!);
        try {
          // One attempt: the first answer is what we time, and it must be the done event.
          const result = await runOurs(service.url, agent, [event!], 1, run.settings.pointBudgetMs, 1);
          const answeredAt = performance.now();
          const ok = result.done === 1;
          if (ok) answered.push(event!);
          run.checkLoad(`cold start ${runtime} #${attempt}`, result);
          const memory = rssMiB(service.pid);
          if (!warmup) {
            const cold: ColdRun = {
              runtime,
              ok,
              error: ok ? undefined : result.errors.join("; ").slice(0, 500),
              execToListeningMs: round(service.listeningAt - service.spawnedAt, 1),
              execToFirstAnswerMs: round(answeredAt - service.spawnedAt, 1),
              firstEventMs: round(result.latencyMs[0]!, 1),
              rssAfterFirstEventMiB: round(memory.rss, 1),
            };
            run.results.coldStart.runs.push(cold);
            run.log(`cold start ${runtime}: listening ${cold.execToListeningMs} ms, first answer ${cold.execToFirstAnswerMs} ms${ok ? "" : " (NOT done)"}, RSS ${cold.rssAfterFirstEventMiB} MiB`);
          }
        } finally {
          await agent.close();
          await run.stopOurs(service);
        }
      }
    }
    await run.verifyPods("cold start", namespace, answered);
  });
  for (const { runtime } of available) {
    const all = run.results.coldStart.runs.filter((entry) => entry.runtime === runtime);
    const runs = all.filter((entry) => entry.ok);
    const first = summarize(runs.map((entry) => entry.execToFirstAnswerMs));
    const listen = summarize(all.map((entry) => entry.execToListeningMs));
    const rss = summarize(all.map((entry) => entry.rssAfterFirstEventMiB));
    run.results.coldStart.summary.push({
      runtime,
      runs: all.length,
      failedRuns: all.length - runs.length,
      firstError: all.find((entry) => !entry.ok)?.error,
      execToFirstAnswerMs: { median: round(first.p50, 1), min: round(first.min, 1), max: round(first.max, 1) },
      execToListeningMs: { median: round(listen.p50, 1), min: round(listen.min, 1), max: round(listen.max, 1) },
      rssAfterFirstEventMiB: round(rss.p50, 1),
    });
  }
}
