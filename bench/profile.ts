/**
 * Evidence for bench/analysis.md: where the service's CPU and memory go.
 *
 *   node bench/profile.ts [--events=2000] [--concurrency=16] [--skip-cpu] [--skip-memory]
 *
 * CPU: the same events at the same concurrency, (a) baseline provisionClient loop profiled in-process with
 * node:inspector, (b) the service run with `node --cpu-prof` while this process sends CloudEvents (the
 * sender profiled too). Self time is grouped by package / Node internals / our src.
 * Memory: idle VmRSS of a bare Node, Node with TypeScript type stripping loaded, the service from .ts, the
 * same service bundled to one .mjs (bun build --target=node, run by the same Node), Deno and the executable;
 * then VmRSS after events for the .ts and bundled variants. The executable: its idle VmRSS split into heaps and
 * mapped pages, and exec → listening, beside "floors" compiled the same way — Bun.serve plus one authenticated
 * TLS call to the API server and nothing of ours, then that plus one package each — so what each costs shows.
 * Writes bench/results/profile-<date>.json and prints markdown tables.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { undiciFetcher } from "../src/adapter/node.ts";
import { loadConfig } from "../src/config.ts";
import { kubeconfigClient, loadKubeconfig } from "../src/kube/kubeconfig.ts";
import type { ProvisionerOptions } from "../src/provision/provisioner.ts";
import { Cluster, findCluster, rssMiB, sleep } from "./lib/cluster.ts";
import { type CpuProfile, type ProfileSummary, readProfile, summarizeProfile } from "./lib/cpuprofile.ts";
import { makeEvents, runBaseline, runOurs, senderAgent } from "./lib/load.ts";
import { type ServiceCommand, serviceCommand, serviceEnv, startService } from "./lib/service.ts";
import { round } from "./lib/stats.ts";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const { values } = parseArgs({
  options: {
    events: { type: "string", default: "2000" },
    concurrency: { type: "string", default: "16" },
    "skip-cpu": { type: "boolean", default: false },
    "skip-memory": { type: "boolean", default: false },
    "skip-startup": { type: "boolean", default: false },
  },
});
const events = Number(values.events);
const concurrency = Number(values.concurrency);
const log = (message: string) => process.stderr.write(`[profile] ${message}\n`);
const info = findCluster(repo);
const cluster = await Cluster.connect(info);
const source = `/bench-profile/${Math.random().toString(36).slice(2, 8)}`;
const work = mkdtempSync(join(tmpdir(), "pgw-profile-"));
const out: Record<string, unknown> = { startedAt: new Date().toISOString(), events, concurrency, node: process.version };

try {
  if (!values["skip-cpu"]) out.cpu = await cpu();
  if (!values["skip-memory"]) out.memory = await memory();
  if (!values["skip-startup"]) out.startup = await startup();
  if (!values["skip-memory"] && serviceCommand(repo, "exe")) out.executable = await executable();
} finally {
  rmSync(work, { recursive: true, force: true });
}
const file = resolve(repo, "bench/results", `profile-${new Date().toISOString().replace(/\.\d+Z$/, "Z").replace(/:/g, "-")}.json`);
mkdirSync(dirname(file), { recursive: true });
writeFileSync(file, JSON.stringify(out, null, 2) + "\n");
log(`wrote ${file}`);
process.exit(0);

async function provisioner(namespace: string): Promise<ProvisionerOptions> {
  const loaded = loadConfig([], { KUBECONFIG: info.kubeconfig, CLIENT_NAMESPACE: namespace });
  if (!("config" in loaded)) throw new Error("unexpected --help");
  const config = loaded.config;
  return {
    kube: await kubeconfigClient(info.kubeconfig, undiciFetcher, { timeoutMs: config["kube-timeout-ms"] }),
    routingInitContainer: config["routing-init-container"],
    pod: {
      namespace,
      image: config["client-image"],
      command: config["client-command"],
      gatewayLabelKey: config["gateway-label"],
      gatewayAnnotationKey: config["gateway-annotation"],
      activeDeadlineSeconds: config["client-max-lifetime-seconds"] || undefined,
    },
  };
}

async function profiled<T>(body: () => Promise<T>): Promise<{ value: T; profile: CpuProfile }> {
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: 200 });
  await session.post("Profiler.start");
  const value = await body();
  const { profile } = await session.post("Profiler.stop");
  session.disconnect();
  return { value, profile: profile as unknown as CpuProfile };
}

function table(title: string, summary: ProfileSummary, perEvent: number): string {
  const lines = [`### ${title}: ${summary.busyMs} ms busy for ${perEvent} events = ${(summary.busyMs / perEvent).toFixed(3)} ms CPU per event`, "", "| where | ms | % of busy |", "| --- | ---: | ---: |"];
  for (const entry of summary.byArea.slice(0, 14)) lines.push(`| ${entry.area} | ${entry.ms} | ${entry.pct} |`);
  lines.push("", "| top functions (self time) | where | ms | % |", "| --- | --- | ---: | ---: |");
  for (const entry of summary.topFunctions.slice(0, 15)) lines.push(`| \`${entry.fn.replace(/\|/g, "\\|")}\` | ${entry.area} | ${entry.ms} | ${entry.pct} |`);
  return lines.join("\n");
}

async function cpu() {
  const result: Record<string, unknown> = {};
  // Baseline, profiled in this process.
  {
    const namespace = await cluster.createRoutedNamespace("bench-prof-base");
    try {
      const options = await provisioner(namespace);
      await runBaseline(options, makeEvents(source, "pb-warm", 50), concurrency, 60_000);
      const batch = makeEvents(source, "pb", events);
      const { value, profile } = await profiled(() => runBaseline(options, batch, concurrency, 120_000));
      const summary = summarizeProfile(profile);
      result.baseline = { done: value.done, perSecond: round(value.done / (value.wallMs / 1000), 1), profile: summary };
      console.log(table(`baseline (provisionClient loop, c=${concurrency})`, summary, value.done), "\n");
    } finally {
      await cluster.deleteNamespace(namespace, 120_000);
    }
  }
  // Ours: the service with --cpu-prof, and this process's senders profiled in-process.
  {
    const namespace = await cluster.createRoutedNamespace("bench-prof-ours");
    const dir = join(work, "cpuprof");
    const command = serviceCommand(repo, "node", ["--cpu-prof", `--cpu-prof-dir=${dir}`])!;
    const service = await startService(command, serviceEnv({ KUBECONFIG: info.kubeconfig, CLIENT_NAMESPACE: namespace }));
    const agent = senderAgent(concurrency);
    try {
      await runOurs(service.url, agent, makeEvents(source, "po-warm", 50), concurrency, 60_000);
      const batch = makeEvents(source, "po", events);
      const { value, profile } = await profiled(() => runOurs(service.url, agent, batch, concurrency, 120_000));
      await agent.close();
      await service.stop();
      const serviceProfile = readProfile(join(dir, readdirSync(dir).find((name) => name.endsWith(".cpuprofile"))!));
      const serviceSummary = summarizeProfile(serviceProfile);
      const senderSummary = summarizeProfile(profile);
      // The service profile covers its whole life (start-up and warm-up too): report it per event over all events.
      const all = value.done + 50;
      result.ours = { done: value.done, perSecond: round(value.done / (value.wallMs / 1000), 1), service: serviceSummary, sender: senderSummary, serviceEventsCovered: all };
      console.log(table(`ours: the service process (node --cpu-prof, whole life incl. start-up, c=${concurrency})`, serviceSummary, all), "\n");
      console.log(table(`ours: the bench's CloudEvents senders (c=${concurrency})`, senderSummary, value.done), "\n");
    } finally {
      await agent.close().catch(() => {});
      await service.stop();
      await cluster.deleteNamespace(namespace, 120_000);
    }
  }
  return result;
}

/** exec → "listening" for the service from .ts and bundled to one .mjs on the same Node, interleaved. */
async function startup() {
  const bundle = join(work, "startup.mjs");
  execFileSync(resolve(repo, "node_modules/.bin/bun"), ["build", resolve(repo, "src/main/node.ts"), "--target=node", "--format=esm", `--outfile=${bundle}`], { stdio: "ignore" });
  const variants: [string, ServiceCommand][] = [
    ["node src/main/node.ts", serviceCommand(repo, "node")!],
    ["node bundle.mjs", { runtime: "node", command: process.execPath, args: [bundle] }],
  ];
  const times: Record<string, number[]> = {};
  for (let run = 0; run < 10; run++) {
    for (const [label, command] of variants) {
      const service = await startService(command, serviceEnv({ KUBECONFIG: info.kubeconfig, CLIENT_NAMESPACE: "default" }));
      (times[label] ??= []).push(service.listeningAt - service.spawnedAt);
      await service.stop();
    }
  }
  const rows = Object.entries(times).map(([label, values]) => {
    const sorted = [...values].sort((a, b) => a - b);
    return { variant: label, medianMs: round(sorted[Math.floor(sorted.length / 2)]!, 1), minMs: round(sorted[0]!, 1) };
  });
  console.log(["| variant | exec → listening, median of 10 (ms) | min (ms) |", "| --- | ---: | ---: |", ...rows.map((row) => `| ${row.variant} | ${row.medianMs} | ${row.minMs} |`)].join("\n"), "\n");
  return rows;
}

async function memory() {
  const node = process.execPath;
  const idle: { variant: string; idleMiB: number }[] = [];
  const measureIdle = async (label: string, command: ServiceCommand) => {
    const namespace = await cluster.createRoutedNamespace("bench-prof-mem");
    const service = await startService(command, serviceEnv({ KUBECONFIG: info.kubeconfig, CLIENT_NAMESPACE: namespace }));
    try {
      await sleep(3000);
      idle.push({ variant: label, idleMiB: round(rssMiB(service.pid).rss, 1) });
    } finally {
      await service.stop();
      await cluster.deleteNamespace(namespace, 0);
    }
  };
  const idleScript = async (label: string, file: string, text: string) => {
    writeFileSync(file, text);
    const { spawn } = await import("node:child_process");
    const child = spawn(node, [file], { stdio: "ignore" });
    await sleep(2000);
    idle.push({ variant: label, idleMiB: round(rssMiB(child.pid!).rss, 1) });
    child.kill();
  };
  await idleScript("bare Node 24 (an idle timer, .mjs)", join(work, "idle.mjs"), "setInterval(() => {}, 1000);\n");
  await idleScript("bare Node 24 running a .ts file (type stripping loaded)", join(work, "idle.ts"), "const n: number = 1;\nsetInterval(() => n, 1000);\n");
  const bundle = join(work, "main.mjs");
  execFileSync(resolve(repo, "node_modules/.bin/bun"), ["build", resolve(repo, "src/main/node.ts"), "--target=node", "--format=esm", `--outfile=${bundle}`], { stdio: "ignore" });
  const ts = serviceCommand(repo, "node")!;
  const bundled: ServiceCommand = { runtime: "node", command: node, args: [bundle] };
  await measureIdle("service: node src/main/node.ts", ts);
  await measureIdle("service bundled to one .mjs (bun build --target=node), same Node", bundled);
  const deno = serviceCommand(repo, "deno");
  if (deno) await measureIdle("service on Deno", deno);
  const exe = serviceCommand(repo, "exe");
  if (exe) await measureIdle("single executable (bun --compile)", exe);
  console.log(["| variant | idle VmRSS (MiB) |", "| --- | ---: |", ...idle.map((row) => `| ${row.variant} | ${row.idleMiB} |`)].join("\n"), "\n");

  // Growth: RSS and its parts (JS heap, external, the rest) after each batch of events.
  const probe = resolve(repo, "bench/lib/memory-probe.mjs");
  const growth: Record<string, { events: number; probe: Record<string, unknown> }[]> = {};
  const batches = (process.env.PGW_PROFILE_BATCHES ?? "0,500,1000,1500").split(",").map(Number);
  const grow = async (label: string, command: ServiceCommand, env: Record<string, string> = {}) => {
    const namespace = await cluster.createRoutedNamespace("bench-prof-grow");
    const service = await startService(command, serviceEnv({ KUBECONFIG: info.kubeconfig, CLIENT_NAMESPACE: namespace, PGW_MEMORY_PROBE_MS: "500", ...env }));
    const latest = (tag: string) => {
      const line = service.tail().split("\n").reverse().find((entry) => entry.startsWith(`${tag} `));
      return line ? (JSON.parse(line.slice(tag.length + 1)) as Record<string, unknown>) : {};
    };
    const rows: { events: number; probe: Record<string, unknown> }[] = [];
    const agent = senderAgent(16);
    let total = 0;
    try {
      for (const count of batches) {
        if (count) {
          const result = await runOurs(service.url, agent, makeEvents(source, `grow-${label.length}-${rows.length}`, count), 16, 300_000);
          total += result.done;
          if (result.done !== count) {
            log(`${label}: only ${result.done} of ${count} events answered done (${result.failed} failed, ${result.lost} lost): ${result.errors.slice(0, 2).join(" | ")}`);
          }
        }
        await sleep(2500);
        const probe = { vmRss: round(rssMiB(service.pid).rss, 1), ...latest("MEMPROBE") };
        // Then the live set: a full GC in the service (it shrinks RSS too, so it is read after).
        service.child.kill("SIGUSR2");
        await sleep(500);
        const afterGc = latest("MEMPROBE-GC") as { heapUsed?: number };
        rows.push({ events: total, probe: { ...probe, liveHeapAfterGc: afterGc.heapUsed } });
        log(`${label}: after ${total} events ${JSON.stringify(rows[rows.length - 1]!.probe)}`);
      }
    } finally {
      await agent.close();
      await service.stop();
      await cluster.deleteNamespace(namespace, 0);
    }
    growth[label] = rows;
  };
  const variants = (process.env.PGW_PROFILE_GROWTH ?? "ts,bundle,ts-semi2").split(",");
  if (variants.includes("ts")) await grow("node src/main/node.ts", { ...ts, args: ["--expose-gc", "--import", probe, ...ts.args] });
  if (variants.includes("bundle")) await grow("bundled .mjs", { ...bundled, args: ["--expose-gc", "--import", probe, bundle] });
  if (variants.includes("ts-semi2")) {
    await grow("node --max-semi-space-size=2 src/main/node.ts", { ...ts, args: ["--max-semi-space-size=2", "--expose-gc", "--import", probe, ...ts.args] });
  }
  if (variants.includes("ts-semi2-arena2")) {
    await grow("MALLOC_ARENA_MAX=2 node --max-semi-space-size=2 src/main/node.ts", { ...ts, args: ["--max-semi-space-size=2", "--expose-gc", "--import", probe, ...ts.args] }, { MALLOC_ARENA_MAX: "2" });
  }
  for (const [label, rows] of Object.entries(growth)) {
    console.log(`\n${label}\n\n| events | VmRSS | heapTotal | heapUsed | live heap after full GC | external | new_space | old_space | code_space | large_object_space |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |`);
    for (const row of rows) {
      const p = row.probe as { vmRss?: number; heapTotal?: number; heapUsed?: number; liveHeapAfterGc?: number; external?: number; spaces?: Record<string, number> };
      console.log(`| ${row.events} | ${p.vmRss} | ${p.heapTotal} | ${p.heapUsed} | ${p.liveHeapAfterGc ?? "–"} | ${p.external} | ${p.spaces?.new_space ?? "–"} | ${p.spaces?.old_space ?? "–"} | ${p.spaces?.code_space ?? "–"} | ${p.spaces?.large_object_space ?? "–"} |`);
    }
  }
  return { idle, growth };
}

/** The executable against floors compiled the same way (see the header): idle RSS split, exec → listening. */
async function executable() {
  const { server, tls } = await loadKubeconfig(info.kubeconfig);
  const bun = resolve(repo, "node_modules/.bin/bun");
  const floor = [
    `const r = await fetch(${JSON.stringify(`${server}/version`)}, { tls: ${JSON.stringify({ ca: tls.ca, cert: tls.cert, key: tls.key })} });`,
    "await r.text();",
    'const s = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("ok") });',
    'console.log(JSON.stringify({ msg: "listening", port: s.port }));',
  ].join("\n");
  const packages: Record<string, string> = {
    "floor": "",
    "floor + yaml": 'import { parse } from "yaml"; parse("a: [1, {b: 2}]");',
    "floor + cloudevents": 'import { CloudEvent, HTTP } from "cloudevents"; HTTP.binary(new CloudEvent({ id: "1", source: "/x", type: "t", data: {} }));',
    "floor + hono": 'import { Hono } from "hono"; const app = new Hono(); app.post("/", (c) => c.text("x")); await app.fetch(new Request("http://x/", { method: "POST" }));',
    "floor + valibot": 'import * as v from "valibot"; v.parse(v.object({ a: v.string() }), { a: "x" });',
  };
  const commands: [string, ServiceCommand][] = Object.entries(packages).map(([label, prelude], index) => {
    const source = join(repo, `node_modules/.cache-floor-${index}.ts`); // inside the repo, so its imports resolve
    writeFileSync(source, `${prelude}\n${floor}\n`);
    const out = join(work, `floor-${index}`);
    try {
      execFileSync(bun, ["build", source, "--compile", `--compile-executable-path=${realpathSync(bun)}`, "--bytecode", "--format=esm", "--minify", `--outfile=${out}`], { stdio: "ignore" });
    } finally {
      rmSync(source, { force: true });
    }
    return [label, { runtime: "exe", command: out, args: [] }];
  });
  commands.push(["podgateway-provisioner", serviceCommand(repo, "exe")!]);
  const rows: Record<string, { listeningMs: number[]; rss: number[]; anon: number[]; file: number[] }> = {};
  for (let run = 0; run < 5; run++) {
    for (const [label, command] of commands) {
      const service = await startService(command, serviceEnv({ KUBECONFIG: info.kubeconfig, CLIENT_NAMESPACE: "default" }));
      await sleep(3000);
      const rss = rssMiB(service.pid);
      const row = (rows[label] ??= { listeningMs: [], rss: [], anon: [], file: [] });
      row.listeningMs.push(service.listeningAt - service.spawnedAt);
      row.rss.push(rss.rss);
      row.anon.push(rss.anon);
      row.file.push(rss.file);
      await service.stop();
    }
  }
  const median = (values: number[]) => round([...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!, 1);
  const table = Object.entries(rows).map(([variant, r]) => ({ variant, listeningMs: median(r.listeningMs), rssMiB: median(r.rss), anonMiB: median(r.anon), fileMiB: median(r.file) }));
  console.log(["| variant | exec → listening (ms) | idle VmRSS (MiB) | anonymous | file pages |", "| --- | ---: | ---: | ---: | ---: |",
    ...table.map((row) => `| ${row.variant} | ${row.listeningMs} | ${row.rssMiB} | ${row.anonMiB} | ${row.fileMiB} |`)].join("\n"), "\n");
  return table;
}

