/** Image size, from dist/build-info.txt (`npm run build`) and the local registry's manifest. */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { BenchRun } from "../lib/context.ts";
import { round } from "../lib/stats.ts";
import type { ImageResult } from "../types.ts";

export async function imagePhase(run: BenchRun): Promise<ImageResult> {
  const { repo } = run;
  const info = resolve(repo, "dist/build-info.txt");
  const binary = resolve(repo, "dist/podgateway-provisioner");
  if (!existsSync(info) || !existsSync(binary)) {
    return { skipped: "dist/build-info.txt or dist/podgateway-provisioner missing: run `npm run build` first" };
  }
  const text = readFileSync(info, "utf8");
  const rootfs = [...text.matchAll(/^\s+(\/\S+) (\d+)$/gm)].map((match) => ({ path: match[1]!, bytes: Number(match[2]) }));
  const binaryBytes = Number(/^size: (\d+) bytes/m.exec(text)?.[1] ?? Number.NaN);
  const rootfsBytes = rootfs.reduce((sum, file) => sum + file.bytes, 0);
  let gzipBytes: number | null = null;
  if (run.results.mode !== "quick") {
    // What a registry would store for the two layers (COPY rootfs, COPY binary), roughly: tar | gzip -6.
    try {
      const out = execFileSync("bash", ["-c", 'tar -C dist -cf - rootfs podgateway-provisioner | gzip -6 | wc -c'], { cwd: repo, encoding: "utf8", timeout: 120_000 });
      gzipBytes = Number(out.trim());
    } catch (error) {
      run.notes.push(`image: gzip estimate failed: ${(error as Error).message}`);
    }
  }
  return {
    runtime: /^runtime: (\S+)/m.exec(text)?.[1] ?? "unknown",
    builtFrom: /^git: (\S+)/m.exec(text)?.[1] ?? "unknown",
    binaryMiB: round(binaryBytes / 2 ** 20, 1),
    rootfsMiB: round(rootfsBytes / 2 ** 20, 2),
    uncompressedMiB: round((binaryBytes + rootfsBytes) / 2 ** 20, 1),
    gzipMiB: gzipBytes === null ? null : round(gzipBytes / 2 ** 20, 1),
    pushed: await pushedImage(repo),
    note: "Sizes of the Dockerfile's inputs (FROM scratch + dist/rootfs + the executable); \"pushed\" is the image that `npm run publish:local` last pushed to the local registry, as its manifest states.",
  };
}

/** The image `scripts/publish-local.sh` last pushed (it writes .cache/publish-local.env): its manifest's sizes, from the local registry. */
async function pushedImage(repo: string): Promise<{ ref: string; digest: string; compressedMiB: number; source: string } | null> {
  const file = resolve(repo, ".cache/publish-local.env");
  if (!existsSync(file)) return null;
  const env = Object.fromEntries(readFileSync(file, "utf8").split("\n").map((line) => line.split("=")).filter((pair) => pair.length === 2));
  const ref = env.IMAGE;
  const digest = env.IMAGE_DIGEST;
  if (!ref || !digest) return null;
  const [registry, ...rest] = ref.split("/");
  const name = rest.join("/").replace(/:[^:]*$/, "");
  try {
    const response = await fetch(`http://${registry}/v2/${name}/manifests/${digest}`, {
      headers: { accept: "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json" },
      signal: AbortSignal.timeout(3000),
    });
    if (response.ok) {
      const manifest = (await response.json()) as { config?: { size?: number }; layers?: { size?: number }[] };
      const bytes = (manifest.config?.size ?? 0) + (manifest.layers ?? []).reduce((sum, layer) => sum + (layer.size ?? 0), 0);
      return { ref, digest, compressedMiB: round(bytes / 2 ** 20, 1), source: "registry manifest" };
    }
  } catch {
    // the local registry is not running: fall back to what the script recorded
  }
  const recorded = Number(env.IMAGE_COMPRESSED_BYTES);
  return Number.isFinite(recorded) && recorded > 0 ? { ref, digest, compressedMiB: round(recorded / 2 ** 20, 1), source: ".cache/publish-local.env" } : null;
}
