/**
 * The CloudEvents conformance CLI (`cloudevents`, github.com/cloudevents/conformance, built by
 * `cluster/cluster.sh build` from ../shared/vendor): `send` and `invoke` as senders, `listen` as a K_SINK.
 * The CLI never reads the reply to what it sends; results are checked where the service also delivers them,
 * at a `listen` K_SINK.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import { cluster } from "../support/cluster.ts";

export const eventsDir = join(dirname(fileURLToPath(import.meta.url)), "events");

/** An event as the CLI writes it in YAML (the same shape as the files `invoke` reads). */
export interface CliEvent {
  Mode: "binary" | "structured";
  /** The attributes; extensions under `Extensions`, keys as they arrived (binary mode: Go-canonical, e.g. `Causationid`). */
  ContextAttributes: Record<string, string> & { Extensions?: Record<string, string> };
  TransportExtensions?: Record<string, string>;
  Data?: string;
}

let cliPath: string | undefined;
/** The built CLI: `CLOUDEVENTS_CLI`, as `cluster.sh env` prints it (the build itself is `cluster.sh build`/`up`). */
export function cloudeventsCli(): string {
  cliPath ??= process.env.CLOUDEVENTS_CLI ?? /^export CLOUDEVENTS_CLI=(.+)$/m.exec(cluster("env"))?.[1];
  if (!cliPath) throw new Error("cluster.sh env printed no CLOUDEVENTS_CLI");
  return cliPath;
}

/** Runs the CLI to completion: its exit code and output. */
export function runCli(args: string[], timeoutMs = 30_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(cloudeventsCli(), args, { timeout: timeoutMs, encoding: "utf8", maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== "number") return reject(error);
      resolve({ code: typeof error?.code === "number" ? error.code : 0, stdout, stderr });
    });
  });
}

/** Reads the YAML event stream the CLI prints (`---` after each event). */
export function parseEvents(text: string): CliEvent[] {
  return parseAllDocuments(text).map((doc) => doc.toJS() as CliEvent | null).filter((event): event is CliEvent => event !== null);
}

/** An attribute or extension of a received event, by its lower-case name. */
export function attribute(event: CliEvent, name: string): string | undefined {
  const { Extensions = {}, ...attributes } = event.ContextAttributes;
  for (const [key, value] of [...Object.entries(attributes), ...Object.entries(Extensions)]) {
    if (key.toLowerCase() === name) return String(value);
  }
  return undefined;
}

export interface Listener {
  /** Where to send events (K_SINK). */
  url: string;
  /** Every event `listen` printed so far, in arrival order. */
  events: () => CliEvent[];
  /** Waits until `count` events arrived, or fails with what did arrive. */
  waitFor: (count: number, timeoutMs?: number) => Promise<CliEvent[]>;
  stop: () => Promise<void>;
}

/**
 * Starts `cloudevents listen`. It binds every interface (`:8080`, no address option), so it runs in a
 * network namespace of its own, reached from here over a veth pair with link-local addresses that are
 * unique per listener (derived from its pid); the pair goes away with the process. Needs root (`ip`, `unshare`).
 */
export async function startListener(): Promise<Listener> {
  const child = spawn("unshare", ["--net", cloudeventsCli(), "listen", "--port", "8080"], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (chunk) => (stdout += chunk));
  child.stderr!.setEncoding("utf8").on("data", (chunk) => (stderr += chunk));
  try {
    await until(() => stderr.includes("listening on"), 10_000, () => `cloudevents listen did not start:\n${stderr}`, child);
    const pid = child.pid!;
    const [hostIp, listenerIp] = [1, 2].map((n) => `169.254.${(pid >> 6) & 255}.${(pid & 63) * 4 + n}`);
    const hostSide = `pgwce${pid}`;
    await ip("link", "add", hostSide, "type", "veth", "peer", "name", "ce0", "netns", String(pid));
    await ip("addr", "add", `${hostIp}/30`, "dev", hostSide);
    await ip("link", "set", hostSide, "up");
    await nsIp(pid, "addr", "add", `${listenerIp}/30`, "dev", "ce0");
    await nsIp(pid, "link", "set", "ce0", "up");
    const events = () => parseEvents(stdout);
    return {
      url: `http://${listenerIp}:8080/`,
      events,
      waitFor: async (count, timeoutMs = 30_000) => {
        await until(() => events().length >= count, timeoutMs, () => `listen got ${events().length} of ${count} events:\n${stdout}\n${stderr}`, child);
        return events();
      },
      stop: () => stop(child),
    };
  } catch (error) {
    await stop(child);
    throw error;
  }
}

function ip(...args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile("ip", args, (error, _stdout, stderr) => (error ? reject(new Error(`ip ${args.join(" ")}: ${stderr || error.message}`)) : resolve()));
  });
}

/** `ip` inside the listener's network namespace. */
function nsIp(pid: number, ...args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile("nsenter", ["--target", String(pid), "--net", "ip", ...args], (error, _stdout, stderr) =>
      error ? reject(new Error(`ip ${args.join(" ")} in ${pid}'s namespace: ${stderr || error.message}`)) : resolve());
  });
}

async function until(check: () => boolean, timeoutMs: number, problem: () => string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) throw new Error(problem());
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  // By pid: under Deno, child.kill() makes a clean exit look like death by signal.
  process.kill(child.pid!, "SIGTERM");
  await exited;
}
