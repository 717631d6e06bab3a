/**
 * Correctness beside speed, for what ships and for the JobSink peer: one event sent as 10 concurrent copies
 * (how many pods / Jobs does it make?), and bad input (what does each answer, and what does it create?).
 */
import { CloudEvent, HTTP } from "cloudevents";
import type { BenchRun } from "../lib/context.ts";
import { countJobs, jobsinkBinary, startJobSink } from "../lib/jobsink.ts";
import { makeEvents } from "../lib/load.ts";
import type { CorrectnessResult } from "../types.ts";

const COPIES = 10;

/** Requests that are not a valid pending event; a careful receiver answers 4xx or a failed event and creates nothing. */
function badInputs(source: string): { name: string; headers: Record<string, string>; body: string }[] {
  const binary = (id: string, data: unknown) => {
    const message = HTTP.binary(new CloudEvent({ id, source, type: "io.podgateway.client.pending", data }));
    return { headers: message.headers as Record<string, string>, body: message.body as string };
  };
  return [
    { name: "not a CloudEvent (plain JSON)", headers: { "content-type": "application/json" }, body: '{"gateway_name":"foo"}' },
    { name: "binary mode without ce-id", headers: { "ce-specversion": "1.0", "ce-source": source, "ce-type": "io.podgateway.client.pending", "content-type": "application/json" }, body: '{"gateway_name":"foo"}' },
    { name: "structured mode, invalid JSON", headers: { "content-type": "application/cloudevents+json" }, body: "{not json" },
    { name: "invalid gateway name in data", ...binary("bad-gateway", { gateway_name: "no spaces allowed" }) },
    { name: "data is not an object", ...binary("bad-data", "just text") },
  ];
}

export async function correctnessPhase(run: BenchRun): Promise<void> {
  const results: CorrectnessResult[] = [];
  const exe = run.command("exe") ?? run.command("node")!;
  await run.inNamespace("correct-ours", async (namespace) => {
    const service = await run.startOurs(namespace, exe);
    try {
      results.push(await probe(run, exe.runtime, service.url, async () => (await run.cluster.clientPods(namespace)).length));
    } finally {
      await run.stopOurs(service);
    }
  });
  const binary = jobsinkBinary(run.clusterInfo);
  if (binary) {
    await run.inNamespace("correct-jobsink", async (namespace) => {
      const peer = await startJobSink(run.repo, run.cluster, namespace, binary);
      run.live.add(peer);
      try {
        results.push(await probe(run, "jobsink", peer.url, async () => (await countJobs(run.cluster, namespace, [])).jobs));
      } finally {
        await peer.stop();
        run.live.delete(peer);
      }
    });
  }
  run.results.correctness = results;
  const ours = results[0]!;
  run.check(`correctness ${ours.runtime}: ${COPIES} copies of one event make one pod, bad input makes none`,
    ours.copies.created === 1 && ours.badInput.every((input) => input.created === 0 && input.status < 500),
    JSON.stringify(ours));
  for (const result of results) {
    run.log(`correctness ${result.runtime}: ${COPIES} copies of one event → ${result.copies.created} created (${result.copies.statuses.join(",")}); bad input: ${result.badInput.map((b) => `${b.name}: ${b.status}, created ${b.created}`).join("; ")}`);
  }
}

/** Sends the copies, then each bad input one at a time; `count()` is how many objects (pods, Jobs) exist so far. */
async function probe(run: BenchRun, runtime: string, url: string, count: () => Promise<number>): Promise<CorrectnessResult> {
  const [event] = makeEvents(run.source, `copies-${runtime}`, 1);
  const statuses = await Promise.all(Array.from({ length: COPIES }, async () => {
    const response = await fetch(url, { method: "POST", headers: event!.headers, body: event!.body });
    await response.body?.cancel();
    return response.status;
  }));
  let total = await count();
  const copies = { sent: COPIES, statuses: [...new Set(statuses)].sort(), created: total };
  const badInput: CorrectnessResult["badInput"] = [];
  for (const input of badInputs(run.source)) {
    const response = await fetch(url, { method: "POST", headers: input.headers, body: input.body });
    const body = await response.text();
    const now = await count();
    badInput.push({ name: input.name, status: response.status, answer: response.headers.get("ce-type") ?? body.slice(0, 120), created: now - total });
    total = now;
  }
  return { runtime, copies, badInput };
}
