/**
 * How many log lines the service writes per stdout write(2), under load: evidence for whether gathering
 * log lines per event-loop turn (src/observability/log.ts) saves system calls at a given concurrency.
 *
 *   node bench/log-writes.ts [--events=1000] [--concurrency=16,64]
 *
 * Runs `node src/main/node.ts` under `strace --seccomp-bpf -f -e trace=write,writev` (only those calls stop
 * the process), sends binary-mode CloudEvents like `npm run bench`, and counts the writes to fd 1 and the
 * lines they carried. strace slows each traced write, which can only make batches larger, so the
 * lines-per-write figure is an upper bound. Needs strace and the local cluster; writes nothing to results/.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Cluster, findCluster, sleep } from "./lib/cluster.ts";
import { makeEvents, runOurs, senderAgent } from "./lib/load.ts";
import { serviceEnv, startService } from "./lib/service.ts";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const { values: flags } = parseArgs({ options: { events: { type: "string", default: "1000" }, concurrency: { type: "string", default: "16,64" } } });
const events = Number(flags.events);
const concurrencies = flags.concurrency!.split(",").map(Number).filter((c) => c > 0);
execFileSync("strace", ["-V"], { stdio: "ignore" });

const info = findCluster(repo);
const cluster = await Cluster.connect(info);
const source = `/bench/log-writes/${Math.random().toString(36).slice(2, 8)}`;

for (const concurrency of concurrencies) {
  const namespace = await cluster.createRoutedNamespace("bench-logw");
  const trace = resolve(tmpdir(), `log-writes-${process.pid}-${concurrency}.txt`);
  const service = await startService(
    { runtime: "node", command: "strace", args: ["--seccomp-bpf", "-f", "-qq", "-e", "trace=write,writev", "-e", "signal=none", "-s", "0", "-o", trace, process.execPath, resolve(repo, "src/main/node.ts")] },
    serviceEnv({ KUBECONFIG: info.kubeconfig, CLIENT_NAMESPACE: namespace }),
  );
  // service.pid is strace's; the service is its child. Stop the service itself, and strace follows it out.
  const children = readFileSync(`/proc/${service.pid}/task/${service.pid}/children`, "utf8").trim().split(/\s+/).map(Number);
  const agent = senderAgent(concurrency);
  try {
    const result = await runOurs(service.url, agent, makeEvents(source, `c${concurrency}`, events), concurrency, 300_000);
    await sleep(500);
    for (const pid of children) process.kill(pid, "SIGTERM");
    await service.stop();
    const lines = readFileSync(trace, "utf8").split("\n");
    // "123 write(1, ""..., 412) = 412": fd 1 is stdout (the JSON log lines); returned bytes / line ≈ lines.
    const stdout = lines.filter((line) => /\b(write|writev)\(1,/.test(line));
    const other = lines.filter((line) => /\b(write|writev)\((?!1,)\d+,/.test(line));
    const logged = (service.outcomes.done ?? 0) + (service.outcomes.failed ?? 0);
    console.log(JSON.stringify({
      concurrency,
      events,
      done: result.done,
      perSecondUnderStrace: Math.round((result.done / result.wallMs) * 1000 * 10) / 10,
      stdoutWrites: stdout.length,
      eventLinesLogged: logged,
      eventLinesPerStdoutWrite: Math.round((logged / Math.max(1, stdout.length)) * 100) / 100,
      otherWritesPerEvent: Math.round((other.length / Math.max(1, result.done)) * 100) / 100,
    }));
  } finally {
    await agent.close();
    await service.stop();
    rmSync(trace, { force: true });
    await cluster.deleteNamespace(namespace, 120_000);
  }
}
process.exit(0);
