/** Facts about the run recorded beside its numbers: the machine, the versions, the commit. */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";
import { resolve } from "node:path";
import { round } from "./stats.ts";
import type { Results } from "../types.ts";

export function machine(): Results["machine"] {
  const cpus = os.cpus();
  return {
    cpus: os.availableParallelism(),
    cpuModel: cpus[0]?.model.trim() ?? "unknown",
    memoryGiB: round(os.totalmem() / 2 ** 30, 1),
    kernel: `${os.type()} ${os.release()}`,
    loadavgStart: os.loadavg().map((value) => round(value, 2)),
    loadavgEnd: [],
  };
}

export function versions(repo: string, kubernetes: string): Results["versions"] {
  const tool = (name: string, args: string[]) => {
    try {
      return execFileSync(resolve(repo, "node_modules/.bin", name), args, { encoding: "utf8", timeout: 30_000 }).split("\n")[0]!.trim();
    } catch {
      return "missing";
    }
  };
  const pkg = (name: string) => {
    try {
      return (JSON.parse(readFileSync(resolve(repo, "node_modules", name, "package.json"), "utf8")) as { version: string }).version;
    } catch {
      return "missing";
    }
  };
  return {
    node: process.version,
    deno: tool("deno", ["--version"]).replace(/^deno (\S+).*$/, "$1"),
    bun: tool("bun", ["--version"]),
    kubernetes,
    hono: pkg("hono"),
    "@hono/node-server": pkg("@hono/node-server"),
    undici: pkg("undici"),
    cloudevents: pkg("cloudevents"),
  };
}

export function gitInfo(repo: string): Results["git"] {
  const git = (...args: string[]) => {
    try {
      return execFileSync("git", args, { cwd: repo, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trimEnd();
    } catch {
      return "";
    }
  };
  const changed = git("status", "--porcelain", "--", "src", "package.json", "package-lock.json").split("\n").filter(Boolean).map((line) => line.slice(3));
  return { commit: git("rev-parse", "HEAD") || "unknown", describe: git("describe", "--always", "--dirty") || "unknown", serviceFilesChanged: changed };
}
