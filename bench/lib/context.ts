/**
 * What every phase of `npm run bench` shares: the cluster, the settings, the checks that fail the run, and the
 * services and namespaces still alive (so an interrupted run cleans up after itself).
 */
import { relative } from "node:path";
import { undiciFetcher } from "../../src/adapter/node.ts";
import { loadConfig } from "../../src/config.ts";
import { kubeconfigClient } from "../../src/kube/kubeconfig.ts";
import type { ProvisionerOptions } from "../../src/provision/provisioner.ts";
import { provisionerOptions } from "../../src/service.ts";
import type { Check, Results } from "../types.ts";
import type { Cluster, ClusterInfo } from "./cluster.ts";
import type { BenchEvent, LoadResult } from "./load.ts";
import { type Runtime, type RunningService, type ServiceCommand, serviceCommand, serviceEnv, startService } from "./service.ts";

/** Sizes of every phase (full or quick). */
export interface Settings {
  concurrencies: number[];
  eventsPerPoint: number;
  blockEvents: number;
  warmupPerPoint: number;
  coldRuns: number;
  coldWarmups: number;
  rssCheckpoints: number[];
  rssConcurrency: number;
  burstEvents: number;
  burstSenders: number;
  burstRetryWindowMs: number;
  pointBudgetMs: number;
  bigBudgetMs: number;
  namespaceWaitMs: number;
  /** Fresh processes (phases/fresh.ts): runs, concurrencies, warm-up and timed events per process. */
  freshRuns: number;
  freshConcurrencies: number[];
  freshWarmups: number;
  freshEvents: number;
}

export class BenchRun {
  readonly checks: Check[] = [];
  readonly notes: string[] = [];
  readonly live = new Set<{ stop: () => Promise<unknown> }>();
  readonly liveNamespaces = new Set<string>();
  readonly #t0 = performance.now();

  readonly repo: string;
  readonly cluster: Cluster;
  readonly clusterInfo: ClusterInfo;
  readonly settings: Settings;
  readonly results: Results;
  /** The `source` of every event this run sends: pods are matched to events by it. */
  readonly source: string;
  /** Extra Node flags for our Node service (--cpu-prof). */
  readonly nodeFlags: string[];

  constructor(options: Pick<BenchRun, "repo" | "cluster" | "clusterInfo" | "settings" | "results" | "source" | "nodeFlags">) {
    this.repo = options.repo;
    this.cluster = options.cluster;
    this.clusterInfo = options.clusterInfo;
    this.settings = options.settings;
    this.results = options.results;
    this.source = options.source;
    this.nodeFlags = options.nodeFlags;
  }

  log(message: string): void {
    process.stderr.write(`[bench ${((performance.now() - this.#t0) / 1000).toFixed(1).padStart(6)}s] ${message}\n`);
  }

  check(name: string, ok: boolean, detail = ""): void {
    this.checks.push({ name, ok, detail });
    if (!ok) this.log(`CHECK FAILED: ${name}${detail ? `: ${detail}` : ""}`);
  }

  async cleanup(): Promise<void> {
    await Promise.all([...this.live].map((service) => service.stop().catch(() => null)));
    await Promise.all([...this.liveNamespaces].map((name) => this.cluster.deleteNamespace(name, 0).catch(() => null)));
  }

  /** A fresh routed namespace, deleted (and waited for, bounded) afterwards. */
  async createNamespace(prefix: string): Promise<string> {
    const namespace = await this.cluster.createRoutedNamespace(`bench-${prefix}`);
    this.liveNamespaces.add(namespace);
    return namespace;
  }

  async deleteNamespace(namespace: string): Promise<void> {
    const { goneAfterMs } = await this.cluster.deleteNamespace(namespace, this.settings.namespaceWaitMs);
    this.liveNamespaces.delete(namespace);
    if (this.settings.namespaceWaitMs > 0 && goneAfterMs === null) {
      this.notes.push(`namespace ${namespace} was not gone ${this.settings.namespaceWaitMs / 1000} s after its deletion; the next phase overlapped its teardown`);
    }
  }

  async inNamespace<T>(prefix: string, body: (namespace: string) => Promise<T>): Promise<T> {
    const namespace = await this.createNamespace(prefix);
    try {
      return await body(namespace);
    } finally {
      await this.deleteNamespace(namespace);
    }
  }

  command(runtime: Runtime, nodeFlags: string[] = runtime === "node" ? this.nodeFlags : []): ServiceCommand | undefined {
    return serviceCommand(this.repo, runtime, nodeFlags);
  }

  async startOurs(namespace: string, command: ServiceCommand): Promise<RunningService> {
    const service = await startService(command, serviceEnv({ KUBECONFIG: this.clusterInfo.kubeconfig, CLIENT_NAMESPACE: namespace }));
    this.live.add(service);
    return service;
  }

  async stopOurs(service: RunningService): Promise<void> {
    const code = await service.stop();
    this.live.delete(service);
    this.check(`${service.runtime} service exited cleanly on SIGTERM`, code === 0, `exit code ${code}\n${service.tail()}`);
  }

  /** The provisioner as `createService` builds it from the same (default) configuration: the same pod, the same calls. */
  async baselineProvisioner(namespace: string): Promise<ProvisionerOptions> {
    const loaded = loadConfig([], { KUBECONFIG: this.clusterInfo.kubeconfig, CLIENT_NAMESPACE: namespace });
    if (!("config" in loaded)) throw new Error("unexpected --help");
    const kube = await kubeconfigClient(this.clusterInfo.kubeconfig, undiciFetcher, { timeoutMs: loaded.config["kube-timeout-ms"] });
    // Exactly the service's pod settings. The service adds `admit` (per-gateway capacity) only when
    // --max-clients-per-gateway > 0; the default is 0.
    return provisionerOptions(loaded.config, kube);
  }

  /** Every sent event has exactly one routed, released pod in the namespace, and there is no other pod. */
  async verifyPods(what: string, namespace: string, sent: BenchEvent[]) {
    const pods = await this.cluster.clientPods(namespace);
    const expected = new Map(sent.map((event) => [event.request.id, event]));
    const seen = new Map<string, number>();
    let unexpected = 0;
    let gated = 0;
    let unrouted = 0;
    for (const pod of pods) {
      const event = pod.requestId === undefined ? undefined : expected.get(pod.requestId);
      if (!event || pod.requestSource !== this.source || pod.name !== event.podName) unexpected++;
      else seen.set(pod.requestId!, (seen.get(pod.requestId!) ?? 0) + 1);
      if (pod.gated) gated++;
      if (!pod.routed) unrouted++;
    }
    const duplicates = [...seen.values()].reduce((sum, count) => sum + count - 1, 0) + unexpected;
    const missing = sent.length - seen.size;
    this.check(`${what}: one routed, released pod per event`, pods.length === sent.length && duplicates === 0 && missing === 0 && gated === 0 && unrouted === 0,
      `events ${sent.length}, pods ${pods.length}, missing ${missing}, duplicates ${duplicates}, still gated ${gated}, not routed ${unrouted}`);
    return { pods: pods.length, duplicates, missing, gated, unrouted, requestIds: [...seen.keys()] };
  }

  checkLoad(what: string, result: LoadResult): void {
    this.check(`${what}: every event answered done`, result.done === result.events && result.failed === 0 && result.lost === 0 && result.unsent === 0,
      `events ${result.events}, done ${result.done}, failed ${result.failed}, lost ${result.lost}, unsent ${result.unsent}${result.errors.length ? `; e.g. ${result.errors.slice(0, 3).join(" | ")}` : ""}`);
  }

  /** Whether a cluster component was restarted (by someone else: e.g. a fault-injection test) during a measurement. */
  restarted(pids: Record<string, number>, what: string): boolean {
    const now = this.cluster.componentPids();
    const changed = Object.entries(pids).filter(([name, pid]) => name in now && now[name] !== pid).map(([name]) => name);
    if (changed.length) this.notes.push(`${what}: ${changed.join(", ")} restarted during the measurement (not by the benchmark); its numbers are disturbed`);
    return changed.length > 0;
  }

  /** `node --flag src/main/node.ts`, `dist/podgateway-provisioner`: paths relative to the repository. */
  commandLine(command: ServiceCommand): string {
    const inRepo = (path: string) => (path.startsWith(this.repo + "/") ? relative(this.repo, path) : path);
    return [command.runtime === "node" ? "node" : inRepo(command.command), ...command.args.map(inRepo)].join(" ");
  }
}
