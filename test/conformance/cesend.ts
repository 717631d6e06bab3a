/**
 * Builds (once, cached by a hash of its sources) and runs `cesend`, the Go sender in this folder that sends
 * the YAML-described events with the CloudEvents Go SDK and prints one JSON line per event.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const conformanceDir = dirname(fileURLToPath(import.meta.url));
export const eventsDir = join(conformanceDir, "events");
const repo = resolve(conformanceDir, "../..");

/** One line of cesend's output: what was sent, the HTTP status (0 when nothing answered), the reply event. */
export interface SendOutcome {
  file: string;
  index: number;
  mode: "binary" | "structured";
  id: string;
  type: string;
  status?: number;
  /** The reply event as the Go SDK parsed it, in the JSON event format. */
  reply?: {
    specversion: string;
    id: string;
    source: string;
    type: string;
    subject?: string;
    datacontenttype?: string;
    data?: Record<string, string>;
    [extension: string]: unknown;
  };
  /** The raw response body when the answer carried no event. */
  body?: string;
  error?: string;
}

function run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolvePromise, reject) => {
    execFile(command, args, { ...options, maxBuffer: 64 << 20, encoding: "utf8" }, (error, stdout, stderr) => {
      if (error && typeof error.code !== "number") return reject(error);
      resolvePromise({ code: typeof error?.code === "number" ? error.code : 0, stdout, stderr });
    });
  });
}

/** The sources the binary is built from: go.mod, go.sum and the .go files, by name. */
function sourceHash(): string {
  const names = readdirSync(conformanceDir).filter((name) => name === "go.mod" || name === "go.sum" || name.endsWith(".go")).sort();
  const hash = createHash("sha256");
  for (const name of names) hash.update(name).update("\0").update(readFileSync(join(conformanceDir, name))).update("\0");
  return hash.digest("hex").slice(0, 16);
}

/** The path of the built sender: `$PGW_CACHE_DIR/bin/cesend-<hash>`, built with `go build` when missing. */
export async function buildSender(): Promise<string> {
  const cache = process.env.PGW_CACHE_DIR ?? join(repo, ".cache");
  const binary = join(cache, "bin", `cesend-${sourceHash()}`);
  if (existsSync(binary)) return binary;
  mkdirSync(dirname(binary), { recursive: true });
  // Built beside its final name and renamed into place, so a concurrent run never sees half a binary.
  const partial = `${binary}.${process.pid}.tmp`;
  const go = process.env.GO ?? "go";
  const built = await run(go, ["build", "-trimpath", "-o", partial, "."], { cwd: conformanceDir });
  if (built.code !== 0) {
    rmSync(partial, { force: true });
    throw new Error(`go build of the conformance sender failed (${built.code}):\n${built.stderr}`);
  }
  renameSync(partial, binary);
  return binary;
}

/** Sends every event of `paths` (files or folders of YAML) to `url`; returns one outcome per event, in order. */
export async function sendEvents(url: string, paths: string[], options: { idSuffix?: string; timeout?: string } = {}): Promise<{
  code: number;
  outcomes: SendOutcome[];
  stderr: string;
}> {
  const binary = await buildSender();
  const args = [];
  if (options.idSuffix) args.push("-id-suffix", options.idSuffix);
  if (options.timeout) args.push("-timeout", options.timeout);
  const result = await run(binary, [...args, url, ...paths]);
  const outcomes = result.stdout.split("\n").filter((line) => line.trim()).map((line) => JSON.parse(line) as SendOutcome);
  return { code: result.code, outcomes, stderr: result.stderr };
}
