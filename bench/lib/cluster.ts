/**
 * The local cluster as the benchmark sees it: where it is (`cluster/cluster.sh env`), an admin client built
 * from the service's own REST client and Node adapter, throw-away routed namespaces, pod listings, and the
 * CPU time each cluster component has used (from /proc), so a phase can say where its CPU went.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { Pod } from "kubernetes-types/core/v1";
import { undiciFetcher } from "../../src/adapter/node.ts";
import { apiRequestCounts } from "./api-requests.ts";
import { isTransient, KubeApiError } from "../../src/kube/errors.ts";
import type { HttpRestClient } from "../../src/kube/http-client.ts";
import { kubeconfigClient } from "../../src/kube/kubeconfig.ts";
import { listPods } from "../../src/kube/pods.ts";
import { ANNOTATION_REQUEST_ID, ANNOTATION_REQUEST_SOURCE, LABEL_MANAGED_BY, MANAGED_BY, ROUTING_GATE } from "../../src/provision/client-pod.ts";

export interface ClusterInfo {
  kubeconfig: string;
  /** The cluster's own kubectl. */
  kubectl: string;
  stateDir: string;
  /** The cluster's Knative Eventing build (`cluster.sh env`'s KNATIVE_BIN_DIR): where the peer's jobsink is. */
  knativeBinDir: string | undefined;
  /** Components `cluster.sh status` reports as not running that provisioning does not need (scheduler, kwok). */
  degraded: string[];
}

/** What provisioning itself needs: admission (webhooks), storage, and the controller-manager for ServiceAccounts and namespace deletion. */
const REQUIRED = ["etcd", "apiserver", "webhook-foo", "webhook-bar", "controller-manager"];

/**
 * Asks `cluster/cluster.sh` where the cluster is and whether its components run. Throws a clear error when one
 * that provisioning needs is down; the scheduler or kwok being down is tolerated and reported (pods are then
 * routed and released but not placed on a node).
 */
export function findCluster(repo: string): ClusterInfo {
  const script = resolve(repo, "cluster/cluster.sh");
  let status = "";
  try {
    status = execFileSync("bash", [script, "status"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 30_000 });
  } catch (error) {
    status = (error as { stdout?: string }).stdout ?? "";
  }
  const states = new Map<string, string>();
  for (const line of status.split("\n")) {
    const match = /^(\S+)\s+(.*)$/.exec(line.trim());
    if (match) states.set(match[1]!, match[2]!);
  }
  const down = [...states].filter(([, state]) => !state.startsWith("running")).map(([name]) => name);
  const missing = REQUIRED.filter((name) => !states.get(name)?.startsWith("running"));
  if (missing.length) {
    throw new Error(`the local cluster is not up (${missing.join(", ")} not running); run \`npm run cluster -- up\` first.\n${status}`);
  }
  const env: Record<string, string> = {};
  const text = execFileSync("bash", [script, "env"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 30_000 });
  for (const line of text.split("\n")) {
    const match = /^export ([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (match) env[match[1]!] = match[2]!.replace(/^['"]|['"]$/g, "");
  }
  const kubeconfig = env.KUBECONFIG ?? resolve(repo, ".cache/cluster/kubeconfig");
  if (!existsSync(kubeconfig)) throw new Error(`cluster status is fine but ${kubeconfig} is missing:\n${status}`);
  return { kubeconfig, kubectl: env.KUBECTL ?? "kubectl", stateDir: env.PGW_CLUSTER_STATE_DIR ?? resolve(repo, ".cache/cluster"), knativeBinDir: env.KNATIVE_BIN_DIR, degraded: down };
}

export class Cluster {
  readonly info: ClusterInfo;
  readonly kube: HttpRestClient;

  private constructor(info: ClusterInfo, kube: HttpRestClient) {
    this.info = info;
    this.kube = kube;
  }

  static async connect(info: ClusterInfo): Promise<Cluster> {
    return new Cluster(info, await kubeconfigClient(info.kubeconfig, undiciFetcher, { timeoutMs: 60_000 }));
  }

  async serverVersion(): Promise<string> {
    const version = await this.kube.performRequest<{ gitVersion?: string }>({ method: "GET", path: "/version" });
    return version.gitVersion ?? "unknown";
  }

  /** A fresh namespace with the label the pod-gateway webhooks select, ready for pods (default ServiceAccount exists). */
  async createRoutedNamespace(prefix: string): Promise<string> {
    const name = `${prefix}-${Math.random().toString(36).slice(2, 8)}`;
    await retrying(() => this.kube.performRequest({
      method: "POST",
      path: "/api/v1/namespaces",
      body: { apiVersion: "v1", kind: "Namespace", metadata: { name, labels: { "routed-gateway": "true", "podgateway.io/bench": "true" } } },
    }).catch((error) => {
      // A retried POST may meet its own earlier success.
      if (error instanceof KubeApiError && error.code === 409) return undefined;
      throw error;
    }));
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        await this.kube.performRequest({ method: "GET", path: `/api/v1/namespaces/${name}/serviceaccounts/default` });
        return name;
      } catch (error) {
        if (!(error instanceof KubeApiError && error.code === 404) && !isTransient(error)) throw error;
      }
      if (Date.now() > deadline) throw new Error(`namespace ${name}: default ServiceAccount not created within 60 s (is the controller-manager up?)`);
      await sleep(100);
    }
  }

  /** Deletes a namespace and waits (bounded) until it is gone, so the next phase does not share the cluster with its teardown. */
  async deleteNamespace(name: string, waitMs: number): Promise<{ goneAfterMs: number | null }> {
    const started = Date.now();
    try {
      await retrying(() => this.kube.performRequest({ method: "DELETE", path: `/api/v1/namespaces/${name}` }));
    } catch (error) {
      if (error instanceof KubeApiError && error.code === 404) return { goneAfterMs: 0 };
      throw error;
    }
    while (Date.now() - started < waitMs) {
      try {
        await this.kube.performRequest({ method: "GET", path: `/api/v1/namespaces/${name}` });
      } catch (error) {
        if (error instanceof KubeApiError && error.code === 404) return { goneAfterMs: Date.now() - started };
        if (!isTransient(error)) throw error;
      }
      await sleep(250);
    }
    return { goneAfterMs: null };
  }

  /** Namespaces an earlier, interrupted run left behind (label podgateway.io/bench=true). */
  async leftoverNamespaces(): Promise<string[]> {
    const list = await retrying(() => this.kube.performRequest<{ items: { metadata?: { name?: string } }[] }>({
      method: "GET",
      path: "/api/v1/namespaces",
      query: { labelSelector: "podgateway.io/bench=true" },
    }));
    return list.items.map((item) => item.metadata?.name ?? "").filter(Boolean);
  }

  /** Every client pod the provisioner made in `namespace` (label selector), reduced to what the checks need. */
  async clientPods(namespace: string): Promise<PodFacts[]> {
    const list = await retrying(() => listPods(this.kube, namespace, { labelSelector: `${LABEL_MANAGED_BY}=${MANAGED_BY}` }));
    return list.items.map(podFacts);
  }

  /** {@link apiRequestCounts} now: take one before and one after a phase. */
  async apiRequestCounts(): Promise<Record<string, number>> {
    return apiRequestCounts(await retrying(() => this.kube.performRequest<string>({ method: "GET", path: "/metrics", expect: "text" })));
  }

  /** PIDs of the cluster's processes, from the pid files `cluster.sh` keeps. */
  componentPids(): Record<string, number> {
    const dir = resolve(this.info.stateDir, "pids");
    const pids: Record<string, number> = {};
    if (!existsSync(dir)) return pids;
    for (const file of readdirSync(dir)) {
      if (!file.endsWith(".pid")) continue;
      const pid = Number(readFileSync(resolve(dir, file), "utf8").trim());
      if (pid > 0 && existsSync(`/proc/${pid}/stat`)) pids[file.slice(0, -4)] = pid;
    }
    return pids;
  }
}

export interface PodFacts {
  name: string;
  requestId: string | undefined;
  requestSource: string | undefined;
  /** Our scheduling gate is still on: not provisioned to the end. */
  gated: boolean;
  /** The webhook's init container is there. */
  routed: boolean;
}

function podFacts(pod: Pod): PodFacts {
  return {
    name: pod.metadata?.name ?? "",
    requestId: pod.metadata?.annotations?.[ANNOTATION_REQUEST_ID],
    requestSource: pod.metadata?.annotations?.[ANNOTATION_REQUEST_SOURCE],
    gated: pod.spec?.schedulingGates?.some((gate) => gate.name === ROUTING_GATE) ?? false,
    routed: pod.spec?.initContainers?.some((container) => container.name === "gateway-init") ?? false,
  };
}

/** CPU seconds (user + system) a process has used so far; NaN if it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // After "pid (comm) ": state is field 3, so utime (14) and stime (15) are at 11 and 12 here.
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return Number.NaN;
  }
}

/** sysconf(_SC_CLK_TCK): 100 on every Linux this runs on. */
const CLOCK_TICKS = 100;

/**
 * Resident set size in MiB (VmRSS), its peak (VmHWM), and its two parts: anonymous memory (heaps) and pages of
 * mapped files (for the executable: its own 110 MB image, as far as touched) from /proc/<pid>/status.
 */
export function rssMiB(pid: number): { rss: number; hwm: number; anon: number; file: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? Number.NaN);
  return { rss: kib("VmRSS") / 1024, hwm: kib("VmHWM") / 1024, anon: kib("RssAnon") / 1024, file: kib("RssFile") / 1024 };
}

/** CPU seconds the whole machine has been busy (all cores, /proc/stat), to tell how much other processes used. */
export function machineBusySeconds(): number {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0]!;
  // cpu user nice system idle iowait irq softirq steal ...
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
  return ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) / CLOCK_TICKS;
}

/**
 * Snapshot of CPU seconds per process, plus "bench" (this process) and "machine" (everything); `cpuDelta`
 * turns two snapshots into what each used in between, with "other" = machine − the processes listed.
 */
export function cpuSnapshot(pids: Record<string, number>): Record<string, number> {
  const snapshot: Record<string, number> = { machine: machineBusySeconds() };
  for (const [name, pid] of Object.entries(pids)) snapshot[name] = cpuSeconds(pid);
  const own = process.cpuUsage();
  snapshot.bench = (own.user + own.system) / 1e6;
  return snapshot;
}

export function cpuDelta(before: Record<string, number>, after: Record<string, number>): { processes: Record<string, number>; other: number } {
  const processes: Record<string, number> = {};
  let machine = 0;
  for (const [name, value] of Object.entries(after)) {
    const start = before[name];
    if (start === undefined || !Number.isFinite(start) || !Number.isFinite(value)) continue;
    if (name === "machine") machine = value - start;
    else processes[name] = value - start;
  }
  const ours = Object.values(processes).reduce((sum, seconds) => sum + seconds, 0);
  return { processes, other: Math.max(0, machine - ours) };
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Retries the benchmark's own bookkeeping calls through transient API server trouble (other people's fault
 * tests restart the shared local API server) for up to `forMs`; anything else fails at once.
 */
export async function retrying<T>(call: () => Promise<T>, forMs = 90_000): Promise<T> {
  const deadline = Date.now() + forMs;
  for (;;) {
    try {
      return await call();
    } catch (error) {
      if (!isTransient(error) || Date.now() > deadline) throw error;
      await sleep(500);
    }
  }
}
