/**
 * The dedicated fuzz run (`npm run fuzz`): over 100,000 generated requests.
 *
 * 1. In process: `--in-process` requests (default 100,000) through `createApp(...).fetch` with an unreachable
 *    Kubernetes that counts calls (see test/fuzz/in-process.ts).
 * 2. Over HTTP, against the real service on the local cluster (`npm run cluster -- up` first), once per runtime
 *    (`--runtimes node,deno`): `--http` requests each (default 10,000). Here valid events really make pods, so
 *    also: every `done` names a pod that exists and is routed by the gateway it names, no unrouted pod is ever
 *    scheduled or ungated (a watch on the namespace), no request gets two pods, and the service is still
 *    healthy at the end. Then `--raw` (default 2,000) raw byte sequences over TCP: broken request lines, header
 *    injection, conflicting lengths, bad chunking, binary garbage; the answer must be a 4xx/413/431 or a closed
 *    connection, never a 5xx, and the service must stay healthy. `--http 0` skips this part (no cluster needed).
 *
 * Bounded: every phase stops after its count or `--max-minutes`, whichever comes first. Exits 1 on any violation.
 *
 *   node test/fuzz/run.ts [--in-process 100000] [--http 10000] [--runtimes node,deno] [--seed N] [--concurrency 16]
 */
import { parseArgs } from "node:util";
import type { Pod } from "kubernetes-types/core/v1";
import { anyRequest, type FuzzRequest, rawBytes, toRequest, violation } from "./arbitraries.ts";
import { appWithUnreachableKube, checkInProcess, type Problems, report, samples } from "./in-process.ts";

const { values } = parseArgs({
  options: {
    "in-process": { type: "string", default: "100000" },
    http: { type: "string", default: "10000" },
    raw: { type: "string", default: "2000" },
    runtimes: { type: "string", default: "node,deno" },
    seed: { type: "string", default: String(Date.now() % 1_000_000_000) },
    concurrency: { type: "string", default: "16" },
    "max-minutes": { type: "string", default: "30" },
  },
});
const seed = Number(values.seed);
const deadline = Date.now() + Number(values["max-minutes"]) * 60_000;
const results: Record<string, unknown>[] = [];
let failed = false;

function record(problems: Problems, kind: string, detail: string, request: FuzzRequest) {
  const seen = problems.get(kind);
  if (!seen) problems.set(kind, { count: 1, example: request, detail });
  else {
    seen.count++;
    if (JSON.stringify(request).length < JSON.stringify(seen.example).length) Object.assign(seen, { example: request, detail });
  }
}

// ---------------------------------------------------------------- 1. in process

{
  const runs = Number(values["in-process"]);
  const target = appWithUnreachableKube();
  const problems: Problems = new Map();
  const started = performance.now();
  let sent = 0;
  for (const request of samples(anyRequest, runs, seed)) {
    if (Date.now() > deadline) break;
    sent++;
    const problem = await checkInProcess(target, request);
    if (problem) record(problems, problem.replace(/:.*$/s, ""), problem, request);
    if (sent % 10_000 === 0) console.error(`[fuzz] in process: ${sent}/${runs}, ${problems.size} kinds of violation`);
  }
  const seconds = (performance.now() - started) / 1000;
  const summary = { phase: "in-process", runtime: process.versions.deno ? "deno" : "node", requests: sent, seconds: Math.round(seconds * 10) / 10, per_second: Math.round(sent / seconds), reached_kube: target.calls(), violation_kinds: problems.size, violations: [...problems.values()].reduce((n, p) => n + p.count, 0), seed };
  results.push(summary);
  console.log(JSON.stringify(summary));
  if (problems.size) {
    failed = true;
    console.log(`in-process violations (seed ${seed}):${report(problems)}`);
  }
}

// ---------------------------------------------------------------- 2. over HTTP, on the cluster

const httpRuns = Number(values.http);
if (httpRuns > 0) {
  const { listPods, repo, routedNamespace } = await import("../support/cluster.ts");
  const { startService } = await import("../support/service.ts");
  const { watchPods } = await import("../support/pod-watch.ts");
  const { sleep } = await import("../../src/retry.ts");
  const concurrency = Number(values.concurrency);

  for (const runtime of values.runtimes!.split(",").map((name) => name.trim()).filter(Boolean)) {
    if (Date.now() > deadline) break;
    const command = runtime === "deno"
      ? { command: `${repo}/node_modules/.bin/deno`, args: ["run", "--allow-all", "--no-check", `${repo}/src/main/deno.ts`] }
      : { command: process.execPath, args: [`${repo}/src/main/node.ts`] };
    const namespace = await routedNamespace(`fuzz-${runtime}`);
    const watch = watchPods(namespace.name);
    await watch.ready;
    const service = await startService({ CLIENT_NAMESPACE: namespace.name }, command);
    const problems: Problems = new Map();
    const statuses: Record<string, number> = {};
    const done: { request: FuzzRequest; pod: string; gateway: string }[] = [];
    let sent = 0;
    let unbuildable = 0;
    const started = performance.now();
    try {
      const generator = samples(anyRequest, httpRuns, seed + 7_777_777);
      const worker = async () => {
        for (;;) {
          if (Date.now() > deadline) return;
          const next = generator.next();
          if (next.done) return;
          const request = next.value;
          let built: Request;
          try {
            built = toRequest(service.url, request);
          } catch {
            unbuildable++;
            continue;
          }
          sent++;
          let status: number;
          let headers: Record<string, string>;
          let body: string;
          try {
            const response = await fetch(built, { signal: AbortSignal.timeout(30_000) });
            status = response.status;
            headers = Object.fromEntries(response.headers);
            body = await response.text();
          } catch (error) {
            const message = `transport error: ${(error as Error).message} ${((error as Error).cause as Error)?.message ?? ""}`;
            statuses.error = (statuses.error ?? 0) + 1;
            // A connection closed after an over-large header block is the HTTP server's own limit, not ours.
            const hugeHeaders = request.headers.reduce((n, [name, value]) => n + name.length + value.length, 0) > 8_000;
            if (!hugeHeaders) record(problems, "transport error", message, request);
            continue;
          }
          statuses[status] = (statuses[status] ?? 0) + 1;
          const problem = violation(request, { status, headers, body }, { kubeReachable: true });
          if (problem) record(problems, problem.replace(/:.*$/s, ""), problem, request);
          if (status === 200 && headers["ce-type"] === "io.podgateway.client.scheduling.done") {
            const data = JSON.parse(body) as { pod_name: string; gateway_name: string };
            done.push({ request, pod: data.pod_name, gateway: data.gateway_name });
            if (!["foo", "bar"].includes(data.gateway_name)) record(problems, "done for a gateway that does not exist", `done for ${data.gateway_name}: ${body}`, request);
          }
          if (sent % 2_000 === 0) console.error(`[fuzz] ${runtime} over HTTP: ${sent}/${httpRuns}, ${problems.size} kinds of violation`);
        }
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
      const seconds = (performance.now() - started) / 1000;

      // Raw bytes over TCP: what no fetch would send.
      const rawRuns = Number(values.raw);
      const rawStatuses: Record<string, number> = {};
      const rawStarted = performance.now();
      const port = Number(new URL(service.url).port);
      const rawGenerator = samples(rawBytes, rawRuns, seed + 99_999);
      const rawWorker = async () => {
        for (;;) {
          if (Date.now() > deadline) return;
          const next = rawGenerator.next();
          if (next.done) return;
          const answer = await sendRaw(port, next.value);
          const status = /^HTTP\/1\.[01] (\d{3})/.exec(answer)?.[1] ?? (answer ? "unparsable" : "closed");
          rawStatuses[status] = (rawStatuses[status] ?? 0) + 1;
          const asRequest: FuzzRequest = { kind: "raw", method: "RAW", path: "/", headers: [], body: next.value.toString("latin1").slice(0, 300), provisionable: false };
          if (/^5/.test(status) && status !== "503") record(problems, `raw bytes answered ${status}`, answer.slice(0, 200), asRequest);
          if (status === "unparsable") record(problems, "raw bytes answered with something that is not HTTP", answer.slice(0, 200), asRequest);
        }
      };
      await Promise.all(Array.from({ length: concurrency }, rawWorker));
      const rawSeconds = (performance.now() - rawStarted) / 1000;
      const rawSent = Object.values(rawStatuses).reduce((a, b) => a + b, 0);

      // Afterwards: the service is healthy, every done pod exists and is routed by the gateway it names.
      const healthy = (await fetch(`${service.url}/healthz`).then((r) => r.status, () => 0)) === 200;
      if (!healthy) record(problems, "service unhealthy after the run", "GET /healthz failed", { kind: "raw", method: "GET", path: "/healthz", headers: [], body: "", provisionable: false });
      const crashed = service.logs.filter((line) => line.msg === "unexpected error");
      for (const line of crashed) record(problems, "unexpected error logged", String(line.error), { kind: "raw", method: "?", path: "/", headers: [], body: "", provisionable: false });
      await sleep(500);
      const pods = new Map<string, Pod>((await listPods(namespace.name)).map((pod) => [pod.metadata!.name!, pod]));
      for (const { request, pod, gateway } of done) {
        const found = pods.get(pod);
        const init = found?.spec?.initContainers?.find((container) => container.name === "gateway-init");
        if (!found) record(problems, "done names a pod that does not exist", pod, request);
        else if (!init || !JSON.stringify(init).includes(`${gateway}-pod-gateway`)) {
          record(problems, "done names a pod not routed by the gateway it names", `${pod} answered done for ${gateway}, routed by ${JSON.stringify(init?.env ?? init?.args ?? "nothing").slice(0, 200)}`, request);
        }
      }
      for (const message of watch.violations) record(problems, "unrouted pod scheduled or ungated", message, { kind: "raw", method: "?", path: "/", headers: [], body: "", provisionable: false });
      for (const message of watch.duplicates()) record(problems, "a request had two pods", message, { kind: "raw", method: "?", path: "/", headers: [], body: "", provisionable: false });

      const summary = {
        phase: "http", runtime, requests: sent + rawSent, http_requests: sent, unbuildable, seconds: Math.round(seconds * 10) / 10, per_second: Math.round(sent / seconds),
        statuses, raw_requests: rawSent, raw_seconds: Math.round(rawSeconds * 10) / 10, raw_statuses: rawStatuses, done: done.length, pods: pods.size, pod_objects_seen: watch.seen.size, violation_kinds: problems.size,
        violations: [...problems.values()].reduce((n, p) => n + p.count, 0), seed,
      };
      results.push(summary);
      console.log(JSON.stringify(summary));
      if (problems.size) {
        failed = true;
        console.log(`${runtime} over-HTTP violations (seed ${seed}):${report(problems)}`);
      }
    } finally {
      await service.stop();
      await watch.stop();
      await namespace.remove();
    }
  }
}

/** Writes `bytes` on a fresh connection; returns what came back within 1.5 s (empty: closed without an answer). */
async function sendRaw(port: number, bytes: Buffer): Promise<string> {
  const { connect } = await import("node:net");
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = connect({ host: "127.0.0.1", port });
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(Buffer.concat(chunks).toString("latin1"));
    };
    const timer = setTimeout(finish, 1_500);
    socket.on("connect", () => socket.write(bytes, () => socket.end()));
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("error", finish);
    socket.on("close", finish);
  });
}

const total = results.reduce((n, r) => n + Number(r.requests), 0);
console.log(`fuzz: ${total} generated requests in all (seed ${seed}); ${failed ? "VIOLATIONS found (see above)" : "no violation"}`);
process.exit(failed ? 1 : 0);
