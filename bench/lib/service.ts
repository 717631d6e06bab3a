/**
 * The service under test as a child process: Node (`node src/main/node.ts`), Deno (`deno run -A --no-check
 * src/main/deno.ts`) or the single executable (`dist/podgateway-provisioner`), on 127.0.0.1 and a free port.
 * Its JSON log lines are read only to find the "listening" line and to count event outcomes.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { createInterface } from "node:readline";
import { CONFIG_ENV } from "../../src/config.ts";

export type Runtime = "node" | "deno" | "exe";

export interface ServiceCommand {
  runtime: Runtime;
  command: string;
  args: string[];
}

/** The three ways to run the service; `exe` only if `npm run build` has produced it. */
export function serviceCommand(repo: string, runtime: Runtime, nodeFlags: string[] = []): ServiceCommand | undefined {
  const bin = resolve(repo, "node_modules/.bin");
  switch (runtime) {
    case "node":
      return { runtime, command: process.execPath, args: [...nodeFlags, resolve(repo, "src/main/node.ts")] };
    case "deno": {
      const deno = resolve(bin, "deno");
      return existsSync(deno) ? { runtime, command: deno, args: ["run", "-A", "--no-check", resolve(repo, "src/main/deno.ts")] } : undefined;
    }
    case "exe": {
      const exe = resolve(repo, "dist/podgateway-provisioner");
      return existsSync(exe) ? { runtime, command: exe, args: [] } : undefined;
    }
  }
}

/**
 * Every environment variable the service reads as configuration — each option's (src/config.ts) and Knative's
 * K_SINK and K_CE_OVERRIDES —: stripped from ours, so it runs on its defaults.
 */
export const SERVICE_ENV_KEYS: readonly string[] = [...CONFIG_ENV, "K_SINK", "K_CE_OVERRIDES"];

/** The service's environment: ours minus its configuration, plus the given settings. */
export function serviceEnv(settings: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !SERVICE_ENV_KEYS.includes(key) && !key.startsWith("npm_") && !key.startsWith("NODE_")) env[key] = value;
  }
  return { ...env, HOST: "127.0.0.1", PORT: "0", ...settings };
}

export interface RunningService {
  runtime: Runtime;
  url: string;
  pid: number;
  child: ChildProcess;
  /** performance.now() just before spawn(). */
  spawnedAt: number;
  /** performance.now() when the "listening" log line arrived. */
  listeningAt: number;
  /** Event outcomes as the service logged them ("done", "retry", "busy" is not logged per event, ...). */
  outcomes: Record<string, number>;
  /** The last lines it printed (stdout and stderr), for error messages. */
  tail: () => string;
  stop: () => Promise<number | null>;
}

/**
 * Spawns the service and resolves once it logs "listening"; rejects with its output if it exits or hangs first.
 * `onLine` sees every later stdout line (the scale run reads the controller's own timings from them).
 */
export async function startService(command: ServiceCommand, env: Record<string, string>, timeoutMs = 30_000, onLine?: (line: string) => void): Promise<RunningService> {
  const spawnedAt = performance.now();
  const child = spawn(command.command, command.args, { env, stdio: ["ignore", "pipe", "pipe"] });
  const tailLines: string[] = [];
  const remember = (line: string) => {
    tailLines.push(line);
    if (tailLines.length > 40) tailLines.shift();
  };
  const outcomes: Record<string, number> = {};
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (chunk: string) => chunk.split("\n").filter(Boolean).forEach(remember));

  let listening = false;
  const lines = createInterface({ input: child.stdout! });
  const port = new Promise<{ port: number; at: number }>((resolvePort, reject) => {
    const timer = setTimeout(() => reject(new Error(`${command.runtime} service did not listen within ${timeoutMs} ms:\n${tailLines.join("\n")}`)), timeoutMs);
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      if (!listening) reject(new Error(`${command.runtime} service exited (${code ?? signal}) before listening:\n${tailLines.join("\n")}`));
    });
    lines.on("line", (line) => {
      if (listening) {
        onLine?.(line);
        // Cheap: no JSON.parse per event line, the sender's CPU is part of what we measure.
        const outcome = /"outcome":"([a-z]+)"/.exec(line)?.[1];
        if (outcome) outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
        else remember(line);
        return;
      }
      remember(line);
      try {
        const record = JSON.parse(line) as { msg?: string; port?: number };
        if (record.msg === "listening" && typeof record.port === "number") {
          listening = true;
          clearTimeout(timer);
          resolvePort({ port: record.port, at: performance.now() });
        }
      } catch {
        // not a log line
      }
    });
  });

  let listened: { port: number; at: number };
  try {
    listened = await port;
  } catch (error) {
    if (child.exitCode === null) child.kill("SIGKILL");
    throw error;
  }
  return {
    runtime: command.runtime,
    url: `http://127.0.0.1:${listened.port}/`,
    pid: child.pid!,
    child,
    spawnedAt,
    listeningAt: listened.at,
    outcomes,
    tail: () => tailLines.join("\n"),
    stop: () => stopChild(child),
  };
}

async function stopChild(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((resolveExit) => child.once("exit", (code) => resolveExit(code)));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  const code = await exited;
  clearTimeout(timer);
  return code;
}
