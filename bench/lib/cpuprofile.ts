/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof` or node:inspector): self time by function and by
 * where the code lives (our src/, a package in node_modules, Node's internals, GC, idle).
 */
import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  /** Sampled time that was not idle, ms. */
  busyMs: number;
  totalMs: number;
  byArea: { area: string; ms: number; pct: number }[];
  topFunctions: { fn: string; area: string; ms: number; pct: number }[];
}

/** Which part of the code a frame belongs to. */
export function area(url: string, functionName: string): string {
  if (!url) {
    if (functionName === "(garbage collector)") return "GC";
    if (functionName === "(idle)") return "idle";
    if (functionName === "(program)") return "V8/native (program)";
    return "native";
  }
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url.startsWith("node:")) {
    const internal = /^node:internal\/([^/]+(?:\/[^/]+)?)/.exec(url)?.[1] ?? url.slice(5);
    if (internal.startsWith("deps/undici")) return "node:undici (bundled)";
    return `node:${internal.replace(/\/.*$/, "")}`;
  }
  const src = /\/(src|bench|test)\/(.*)$/.exec(url);
  if (src) return `${src[1]}/${src[2]}`;
  return url;
}

export function summarizeProfile(profile: CpuProfile, top = 25): ProfileSummary {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, index) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[index] ?? 0)));
  const areas = new Map<string, number>();
  const functions = new Map<string, { area: string; us: number }>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const where = area(url, functionName);
    total += us;
    if (where === "idle") {
      idle += us;
      continue;
    }
    areas.set(where, (areas.get(where) ?? 0) + us);
    const key = `${functionName || "(anonymous)"} ${url ? `${url.replace(/^.*\/(node_modules|src|bench)\//, "$1/")}:${lineNumber + 1}` : ""}`.trim();
    const entry = functions.get(key) ?? { area: where, us: 0 };
    entry.us += us;
    functions.set(key, entry);
  }
  const busy = total - idle;
  const pct = (us: number) => Math.round((us / Math.max(1, busy)) * 1000) / 10;
  return {
    busyMs: Math.round(busy / 1000),
    totalMs: Math.round(total / 1000),
    byArea: [...areas].sort((a, b) => b[1] - a[1]).map(([name, us]) => ({ area: name, ms: Math.round(us / 1000), pct: pct(us) })),
    topFunctions: [...functions].sort((a, b) => b[1].us - a[1].us).slice(0, top)
      .map(([fn, entry]) => ({ fn, area: entry.area, ms: Math.round(entry.us / 1000), pct: pct(entry.us) })),
  };
}

export function readProfile(path: string): CpuProfile {
  return JSON.parse(readFileSync(path, "utf8")) as CpuProfile;
}
