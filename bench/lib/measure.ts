/** Turning load results and CPU readings into what a results file records. */
import type { cpuDelta } from "./cluster.ts";
import type { LoadResult } from "./load.ts";
import { round, summarize } from "./stats.ts";
import type { Side } from "../types.ts";

export type CpuDelta = ReturnType<typeof cpuDelta>;

export function mergeResults(parts: LoadResult[]): LoadResult {
  const latencies = new Float64Array(parts.reduce((sum, part) => sum + part.latencyMs.length, 0));
  const answered = new Uint8Array(latencies.length);
  let offset = 0;
  for (const part of parts) {
    latencies.set(part.latencyMs, offset);
    answered.set(part.answered, offset);
    offset += part.latencyMs.length;
  }
  const retries: Record<string, number> = {};
  for (const part of parts) for (const [key, count] of Object.entries(part.retries)) retries[key] = (retries[key] ?? 0) + count;
  const sum = (pick: (part: LoadResult) => number) => parts.reduce((total, part) => total + pick(part), 0);
  return {
    events: sum((p) => p.events),
    concurrency: parts[0]?.concurrency ?? 0,
    done: sum((p) => p.done),
    failed: sum((p) => p.failed),
    lost: sum((p) => p.lost),
    unsent: sum((p) => p.unsent),
    retries,
    wallMs: sum((p) => p.wallMs),
    latencyMs: latencies,
    answered,
    maxAttemptsUsed: Math.max(0, ...parts.map((p) => p.maxAttemptsUsed)),
    errors: parts.flatMap((p) => p.errors).slice(0, 10),
  };
}

export function mergeCpu(parts: CpuDelta[]): CpuDelta {
  const processes: Record<string, number> = {};
  for (const part of parts) for (const [name, used] of Object.entries(part.processes)) processes[name] = (processes[name] ?? 0) + used;
  return { processes, other: parts.reduce((sum, part) => sum + part.other, 0) };
}

/** API server requests per event between two apiserver_request_total snapshots (only those made at least once per 100 events). */
export function perEvent(before: Record<string, number>, after: Record<string, number>, events: number): Record<string, number> {
  const calls: Record<string, number> = {};
  for (const [key, value] of Object.entries(after)) {
    const per = (value - (before[key] ?? 0)) / Math.max(1, events);
    if (per >= 0.01) calls[key] = round(per, 2);
  }
  return calls;
}

export function sideOf(result: LoadResult, cpu: CpuDelta): Side {
  const latency = summarize([...result.latencyMs].filter(Number.isFinite));
  const sent = Math.max(1, result.events - result.unsent);
  const seconds = result.wallMs / 1000;
  const cpuMsPerEvent: Record<string, number> = {};
  for (const [name, used] of Object.entries(cpu.processes)) cpuMsPerEvent[name] = round((used * 1000) / sent, 3);
  return {
    events: result.events,
    done: result.done,
    failed: result.failed,
    lost: result.lost,
    unsent: result.unsent,
    retries: result.retries,
    wallMs: round(result.wallMs, 1),
    perSecond: round(result.done / seconds, 1),
    latencyMs: { n: latency.n, min: round(latency.min, 2), p50: round(latency.p50, 2), p90: round(latency.p90, 2), p99: round(latency.p99, 2), max: round(latency.max, 2), mean: round(latency.mean, 2) },
    cpuMsPerEvent,
    cpuUtilisation: round(Object.values(cpu.processes).reduce((sum, used) => sum + used, 0) / seconds, 2),
    otherCpuUtilisation: round(cpu.other / seconds, 2),
    apiCallsPerEvent: {},
  };
}
