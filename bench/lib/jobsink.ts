/**
 * Knative JobSink (Go, from ../shared/vendor/knative-eventing) as a peer in the same run: it turns each CloudEvent
 * into a Job + Secret, deduplicated by a hash of source + id, answers 202, and validates nothing of the data.
 *
 * It runs out of cluster as its README's components do in a pod: SYSTEM_NAMESPACE with the config-features,
 * config-logging and config-observability ConfigMaps, the JobSink and EventPolicy CRDs, one JobSink object
 * (whose Jobs are suspended: the comparison is the two API writes, not running Jobs), its client-go rate limit
 * lifted (KUBE_API_QPS/KUBE_API_BURST). It listens on every interface of the fixed port 8080, so it gets a
 * network namespace of its own (`unshare --net`), joined to ours by socket-file relays (bench/lib/relay.ts).
 *
 * Binary: PGW_JOBSINK_BIN, else jobsink in KNATIVE_BIN_DIR (ours, else the one `cluster.sh env` names: the cluster's
 * Knative build), else $PGW_CACHE_DIR/bin/jobsink-dev/jobsink (`go build -mod=vendor -trimpath ./cmd/jobsink` by hand).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readlinkSync, realpathSync, rmSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Server } from "node:net";
import { KubeApiError } from "../../src/kube/errors.ts";
import type { Cluster, ClusterInfo } from "./cluster.ts";
import type { BenchEvent } from "./load.ts";
import { relay } from "./relay.ts";

export const SYSTEM_NAMESPACE = "knative-eventing";
const NAME = "bench";

export function jobsinkBinary(info: ClusterInfo): string | undefined {
  const cache = process.env.PGW_CACHE_DIR ?? resolve(homedir(), ".cache/podgateway-provisioner");
  const knative = process.env.KNATIVE_BIN_DIR ?? info.knativeBinDir;
  const candidates = [
    process.env.PGW_JOBSINK_BIN,
    knative && resolve(knative, "jobsink"),
    resolve(cache, "bin/jobsink-dev/jobsink"),
  ];
  return candidates.find((path): path is string => Boolean(path) && existsSync(path!));
}

/** Knative Eventing's sources: PGW_KNATIVE_EVENTING_SRC, else ../shared/vendor/knative-eventing beside the checkout or its parent. */
function vendorDir(repo: string): string {
  const candidates = [process.env.PGW_KNATIVE_EVENTING_SRC, resolve(repo, "../shared/vendor/knative-eventing"), resolve(repo, "../../shared/vendor/knative-eventing")];
  const found = candidates.find((dir): dir is string => Boolean(dir) && existsSync(`${dir!}/config/core/resources/jobsink.yaml`));
  if (!found) throw new Error(`Knative Eventing sources not found (tried ${candidates.filter(Boolean).join(", ")}); set PGW_KNATIVE_EVENTING_SRC`);
  return found;
}

/** The CRDs, the system namespace and its ConfigMaps, straight from Knative's own config/ (server-side apply). */
export function installJobSinkApi(repo: string, info: ClusterInfo): void {
  const config = resolve(vendorDir(repo), "config/core");
  const kubectl = (...args: string[]) =>
    execFileSync(info.kubectl, args, { encoding: "utf8", env: { ...process.env, KUBECONFIG: info.kubeconfig }, stdio: ["ignore", "pipe", "pipe"] });
  kubectl("apply", "--server-side", "--force-conflicts", "-f", `${config}/resources/jobsink.yaml`, "-f", `${config}/resources/eventpolicy.yaml`);
  kubectl("wait", "--for=condition=Established", "crd/jobsinks.sinks.knative.dev", "crd/eventpolicies.eventing.knative.dev", "--timeout=60s");
  if (!kubectl("get", "namespace", SYSTEM_NAMESPACE, "--ignore-not-found", "-o", "name")) kubectl("create", "namespace", SYSTEM_NAMESPACE);
  kubectl("apply", "--server-side", "--force-conflicts", "-n", SYSTEM_NAMESPACE,
    "-f", `${config}/configmaps/features.yaml`, "-f", `${config}/configmaps/logging.yaml`, "-f", `${config}/configmaps/observability.yaml`);
}

export interface JobSinkPeer {
  /** Where to POST events: http://127.0.0.1:<relay>/<namespace>/<jobsink>. */
  url: string;
  pid: number;
  /** performance.now() when the jobsink binary was exec'd (after its network namespace and relay were set up). */
  execAt: number;
  /** The relay inside its network namespace (its CPU is not JobSink's). */
  relayPid: number | undefined;
  tail: () => string;
  stop: () => Promise<number | null>;
}

/** A JobSink object in `namespace` and the jobsink process serving it, ready (its informer has the object). */
export async function startJobSink(repo: string, cluster: Cluster, namespace: string, binary: string): Promise<JobSinkPeer> {
  await createJobSink(cluster, namespace);
  const dir = mkdtempSync(join(tmpdir(), "pgw-jobsink-"));
  const apiPort = Number(new URL(cluster.kube.server).port || 443);
  const servers: Server[] = [await relay(`unix:${dir}/api.sock`, `tcp:127.0.0.1:${apiPort}`)];
  const script = [
    "ip link set lo up",
    `"$RELAY_NODE" "$RELAY" "tcp:127.0.0.1:${apiPort}=unix:${dir}/api.sock" "unix:${dir}/sink.sock=tcp:127.0.0.1:8080" >/dev/null &`,
    // The relay makes sink.sock after its API listener: from then on jobsink can reach the API server.
    `for _ in $(seq 200); do [ -S "${dir}/sink.sock" ] && break; sleep 0.05; done`,
    'exec "$JOBSINK"',
  ].join("\n");
  const child = spawn("unshare", ["--net", "--", "bash", "-c", script], {
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      KUBECONFIG: cluster.info.kubeconfig,
      SYSTEM_NAMESPACE,
      KUBE_API_QPS: "100000",
      KUBE_API_BURST: "100000",
      JOBSINK: binary,
      RELAY_NODE: process.execPath,
      RELAY: resolve(repo, "bench/lib/relay.ts"),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: string[] = [];
  const keep = (chunk: Buffer) => {
    lines.push(...chunk.toString().split("\n").filter(Boolean));
    lines.splice(0, Math.max(0, lines.length - 40));
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  // The relay inside the namespace is jobsink's child (bash started it, then became jobsink): found while
  // jobsink runs, since it is re-parented once jobsink exits.
  let relayPid: number | undefined;
  const stop = async () => {
    relayPid ??= childrenOf(child.pid!)[0];
    const code = await stopChild(child);
    if (relayPid) {
      try {
        process.kill(relayPid, "SIGTERM");
      } catch {
        // already gone
      }
    }
    servers.forEach((server) => server.close());
    rmSync(dir, { recursive: true, force: true });
    return code;
  };
  try {
    const execAt = await waitForExec(child, binary, lines);
    await waitForFile(`${dir}/sink.sock`, child, lines);
    const front = await relay("tcp:127.0.0.1:0", `unix:${dir}/sink.sock`);
    servers.push(front);
    const port = (front.address() as { port: number }).port;
    const base = `http://127.0.0.1:${port}`;
    await waitReady(`${base}/namespaces/${namespace}/name/${NAME}/sources/ready/ids/ready`, child, lines);
    relayPid = childrenOf(child.pid!)[0];
    return { url: `${base}/${namespace}/${NAME}`, pid: child.pid!, execAt, relayPid, tail: () => lines.join("\n"), stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** The JobSink object, with the status its controller would give it (the handler reads status.address). */
async function createJobSink(cluster: Cluster, namespace: string): Promise<void> {
  const path = `/apis/sinks.knative.dev/v1alpha1/namespaces/${namespace}/jobsinks`;
  await cluster.kube.performRequest({
    method: "POST",
    path,
    body: {
      apiVersion: "sinks.knative.dev/v1alpha1",
      kind: "JobSink",
      metadata: { name: NAME },
      spec: {
        job: {
          spec: {
            suspend: true,
            template: { spec: { restartPolicy: "Never", containers: [{ name: "main", image: "busybox", command: ["true"] }] } },
          },
        },
      },
    },
  }).catch((error) => {
    if (!(error instanceof KubeApiError && error.code === 409)) throw error;
  });
  await cluster.kube.performRequest({
    method: "PATCH",
    path: `${path}/${NAME}/status`,
    contentType: "application/merge-patch+json",
    body: { status: { address: { url: `http://127.0.0.1/${namespace}/${NAME}` } } },
  });
}

/** Jobs and Secrets per event: exactly one of each is correct; the names are JobSink's hash of source + id. */
export async function countJobs(cluster: Cluster, namespace: string, events: BenchEvent[]) {
  const list = async (resource: string) =>
    (await cluster.kube.performRequest<{ items: { metadata: { labels?: Record<string, string> } }[] }>({
      method: "GET",
      path: resource === "jobs" ? `/apis/batch/v1/namespaces/${namespace}/jobs` : `/api/v1/namespaces/${namespace}/secrets`,
      query: { labelSelector: `sinks.knative.dev/job-sink-name=${NAME}` },
    })).items.length;
  const [jobs, secrets] = [await list("jobs"), await list("secrets")];
  return { events: events.length, jobs, secrets, duplicates: Math.max(0, jobs - events.length), missing: Math.max(0, events.length - jobs) };
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** When the spawned shell became jobsink (its /proc/<pid>/exe), polled every millisecond: the start of its own start-up. */
async function waitForExec(child: ChildProcess, binary: string, lines: string[]): Promise<number> {
  const target = realpathSync(binary);
  const deadline = performance.now() + 30_000;
  while (performance.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`jobsink exited (${child.exitCode}):\n${lines.join("\n")}`);
    try {
      if (readlinkSync(`/proc/${child.pid}/exe`) === target) return performance.now();
    } catch {
      // not started yet, or just exiting
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  throw new Error(`jobsink was not exec'd within 30 s:\n${lines.join("\n")}`);
}

async function waitForFile(path: string, child: ChildProcess, lines: string[]): Promise<void> {
  for (let i = 0; i < 300 && !existsSync(path); i++) {
    if (child.exitCode !== null) throw new Error(`jobsink exited (${child.exitCode}):\n${lines.join("\n")}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  if (!existsSync(path)) throw new Error(`jobsink's relay did not start:\n${lines.join("\n")}`);
}

/**
 * GET of a status URL: 400 until the informer has our JobSink, then 500 (no such Job): ready. Polled every 10 ms,
 * as a fine readiness probe would: the fresh-process phase times exec → first answer through it.
 */
async function waitReady(url: string, child: ChildProcess, lines: string[]): Promise<void> {
  let last = "";
  const deadline = performance.now() + 60_000;
  while (performance.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`jobsink exited (${child.exitCode}):\n${lines.join("\n")}`);
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await response.body?.cancel();
      if (response.status !== 400) return;
      last = `HTTP ${response.status}`;
    } catch (error) {
      last = (error as Error).message;
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`jobsink not ready within 60 s (${last}):\n${lines.join("\n")}`);
}

async function stopChild(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  process.kill(child.pid!, "SIGTERM");
  const timer = setTimeout(() => process.kill(child.pid!, "SIGKILL"), 15_000);
  const code = await exited;
  clearTimeout(timer);
  return code;
}
