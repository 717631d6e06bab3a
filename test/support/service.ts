/** Starts the real service as a child process (same runtime as the test) and stops it again. */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { clusterKubeconfig, repo } from "./cluster.ts";
import { testedServiceCommand } from "./runtime.ts";

export interface RunningService {
  url: string;
  process: ChildProcess;
  /** Every JSON log line the service printed so far. */
  logs: Record<string, unknown>[];
  /** Everything it printed, raw (stdout and stderr), to check what never appears in logs. */
  output: () => string;
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
}

/** Runs `podgateway-provisioner controller` (leader-elected lifecycle tracker) the same way as the service. */
export function startController(env: Record<string, string> = {}): Promise<RunningService> {
  const command = testedServiceCommand(repo);
  return startService(env, { command: command.command, args: [...command.args, "controller"] });
}

/** The uninstall step, `controller --remove-finalizers`, on a namespace (admin kubeconfig unless `env` says). */
export function removeFinalizers(namespace: string, env: Record<string, string> = {}) {
  const command = testedServiceCommand(repo);
  return spawnSync(command.command, [...command.args, "controller", "--remove-finalizers"], {
    env: { ...process.env, KUBECONFIG: clusterKubeconfig(), CLIENT_NAMESPACE: namespace, ...env },
    encoding: "utf8",
    timeout: 60_000,
  });
}

/** Runs the service on a free port against the local cluster; `env` adds or overrides options. */
export async function startService(env: Record<string, string> = {}, command: { command: string; args: string[] } = testedServiceCommand(repo)): Promise<RunningService> {
  const child = spawn(command.command, command.args, {
    env: { ...process.env, KUBECONFIG: clusterKubeconfig(), HOST: "127.0.0.1", PORT: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: Record<string, unknown>[] = [];
  let raw = "";
  child.stderr!.on("data", (chunk) => (raw += chunk));
  const lines = createInterface({ input: child.stdout! });
  const port = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`service did not listen within 20 s:\n${raw}`)), 20_000);
    lines.on("line", (line) => {
      raw += line + "\n";
      try {
        const record = JSON.parse(line);
        logs.push(record);
        if (record.msg === "listening") {
          clearTimeout(timer);
          resolve(record.port);
        }
      } catch {
        // not a log line
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`service exited with ${code} before listening:\n${raw}`));
    });
  });
  const listening = await port;
  return {
    url: `http://127.0.0.1:${listening}`,
    process: child,
    logs,
    output: () => raw,
    stop: async (signal = "SIGTERM") => {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      const exited = once(child, "exit");
      // By pid: under Deno, child.kill() makes a clean exit(0) look like death by signal.
      process.kill(child.pid!, signal);
      const [code] = await exited;
      return code as number | null;
    },
  };
}
