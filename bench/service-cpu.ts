/**
 * The service process's own CPU per event, quickly, for trying hot-path changes against the real cluster:
 *
 *   node bench/service-cpu.ts [--runtime=exe|node|deno] [--events=1000] [--concurrency=64] [-- extra args for the command]
 *
 * One namespace, one service, a warm-up of 100 events, then the timed events; prints CPU ms/event from /proc.
 */
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Cluster, cpuSeconds, findCluster } from "./lib/cluster.ts";
import { makeEvents, runOurs, senderAgent } from "./lib/load.ts";
import { type Runtime, serviceCommand, serviceEnv, startService } from "./lib/service.ts";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const { values, positionals } = parseArgs({
  options: { runtime: { type: "string", default: "exe" }, events: { type: "string", default: "1000" }, concurrency: { type: "string", default: "64" } },
  allowPositionals: true,
});
const info = findCluster(repo);
const cluster = await Cluster.connect(info);
const command = serviceCommand(repo, values.runtime as Runtime);
if (!command) throw new Error(`no ${values.runtime} command (npm run build for exe)`);
command.args.push(...positionals);
const namespace = await cluster.createRoutedNamespace("bench-cpu");
const service = await startService(command, serviceEnv({ KUBECONFIG: info.kubeconfig, CLIENT_NAMESPACE: namespace }));
const concurrency = Number(values.concurrency);
const agent = senderAgent(concurrency);
try {
  const source = `/bench/cpu-${Date.now()}`;
  await runOurs(service.url, agent, makeEvents(source, "warm", 100), concurrency, 120_000);
  const before = cpuSeconds(service.pid);
  const events = makeEvents(source, "timed", Number(values.events));
  const result = await runOurs(service.url, agent, events, concurrency, 300_000);
  const used = cpuSeconds(service.pid) - before;
  console.log(JSON.stringify({ runtime: values.runtime, events: events.length, done: result.done, concurrency, perSecond: Math.round(result.done / (result.wallMs / 1000)), cpuMsPerEvent: Math.round((used * 1000 / events.length) * 1000) / 1000 }));
} finally {
  await agent.close();
  await service.stop();
  await cluster.deleteNamespace(namespace, 0);
}
