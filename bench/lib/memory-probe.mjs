/**
 * Preloaded into the service by bench/profile.ts (`node --import ./bench/lib/memory-probe.mjs ...`; plain
 * JavaScript on purpose: a .ts preload would load Node's type stripper and inflate what it measures).
 * Every PGW_MEMORY_PROBE_MS (default 1000) it prints one stderr line `MEMPROBE {json}` with
 * process.memoryUsage() and V8's heap spaces; on SIGUSR2 it runs a full GC first (needs --expose-gc) and
 * prints `MEMPROBE-GC {json}`: the live set, as opposed to what V8 merely has not collected yet.
 */
import { getHeapSpaceStatistics } from "node:v8";

const every = Number(process.env.PGW_MEMORY_PROBE_MS) || 1000;
const mib = (bytes) => Math.round((bytes / 2 ** 20) * 10) / 10;
const report = (tag) => {
  const usage = process.memoryUsage();
  const spaces = {};
  for (const space of getHeapSpaceStatistics()) {
    if (space.physical_space_size > 0) spaces[space.space_name] = mib(space.physical_space_size);
  }
  process.stderr.write(`${tag} ${JSON.stringify({
    rss: mib(usage.rss),
    heapTotal: mib(usage.heapTotal),
    heapUsed: mib(usage.heapUsed),
    external: mib(usage.external),
    arrayBuffers: mib(usage.arrayBuffers),
    spaces,
  })}\n`);
};
setInterval(() => report("MEMPROBE"), every).unref();
process.on("SIGUSR2", () => {
  globalThis.gc?.();
  report("MEMPROBE-GC");
});
