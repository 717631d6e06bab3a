/**
 * The pool keeper, run by the controller's leader only: keeps `--warm-pool` members per gateway, made exactly like
 * clients (src/provision/provisioner.ts: the routing gate, the webhook's `gateway-init` check, the capacity slot),
 * labelled as members with the template's hash. Level-triggered on a watch of the members: every change, and a
 * periodic resync, compares what is with what should be.
 * - too few current members (counting those being made): make more, at most MAKING at once;
 * - a member of another hash (the template changed), of a gateway with no pool, or beyond the size: deleted;
 * - a member that failed, or is not Ready in time (its gateway down, its routing broken): deleted, then remade;
 * - a member left behind its routing gate (a leader that died mid-refill): finished, like a redelivered request.
 * A claimed member leaves the pool (its label goes), so the watch drops it and the keeper makes another.
 */
import type { Pod } from "kubernetes-types/core/v1";
import { isStatus } from "../kube/errors.ts";
import { deletePod } from "../kube/pods.ts";
import type { StreamingRestClient } from "../kube/rest-client.ts";
import { failureOf, isAdmitted, neverRan, type StateRules } from "../lifecycle/client-state.ts";
import { watchPods } from "../lifecycle/watch.ts";
import type { Logger } from "../observability/log.ts";
import type { Metrics } from "../observability/metrics.ts";
import { ANNOTATION_REQUEST_ID, ANNOTATION_REQUEST_SOURCE, type ClientRequest, clientPodName, gatewayOf } from "../provision/client-pod.ts";
import { provisionClient, type ProvisionerOptions } from "../provision/provisioner.ts";
import { isMember, LABEL_POOL_TEMPLATE, memberRequest, memberSettings, POOL_MEMBERS, POOL_SOURCE } from "./member.ts";

export interface KeeperOptions {
  /** Fenced by the leader's term: nothing is written once it is over. */
  kube: StreamingRestClient;
  /** How members are made: the service's own settings (template included) and admission (capacity). */
  provisioner: ProvisionerOptions;
  sizes: Readonly<Record<string, number>>;
  hash: string;
  /** A member not Ready within `readyTimeoutMs` of its creation is deleted (0: the keeper's default, 120 s). */
  rules: StateRules;
  log: Logger;
  metrics: Pick<Metrics, "countPool">;
  resyncMs?: number;
}

/** Members made at once, over all gateways: bounds the API burst of filling a pool of hundreds. */
const MAKING = 16;

export class PoolKeeper {
  readonly #options: KeeperOptions;
  /** Every unclaimed member (any hash), by name, as last seen or made. */
  readonly #members = new Map<string, Pod>();
  /** Names of the members being made or finished right now, by gateway. */
  readonly #making = new Map<string, Set<string>>();
  readonly #deleting = new Set<string>();
  #active = 0;
  #synced = false;
  #signal: AbortSignal = AbortSignal.abort();
  /** A gateway whose member could not be made waits until then before the next try (its webhook down, say). */
  readonly #backoff = new Map<string, number>();

  constructor(options: KeeperOptions) {
    this.#options = options;
  }

  /** Watches and keeps the pools until `signal` aborts (the term's). */
  async run(signal: AbortSignal): Promise<void> {
    this.#signal = signal;
    const { kube, provisioner, log } = this.#options;
    const resync = setInterval(() => this.#reconcile(), this.#options.resyncMs ?? 2_000);
    try {
      await watchPods({ kube, namespace: provisioner.pod.namespace, labelSelector: POOL_MEMBERS, log }, {
        onList: (pods) => {
          this.#members.clear();
          for (const pod of pods) this.#members.set(pod.metadata!.name!, pod);
          this.#synced = true;
          this.#reconcile();
        },
        onChange: (type, pod) => {
          const name = pod.metadata!.name!;
          if (type === "DELETED") this.#members.delete(name);
          else this.#members.set(name, pod);
          this.#reconcile();
        },
      }, signal);
    } finally {
      clearInterval(resync);
    }
  }

  /** Members of `gateway` that count towards its size: current, not being deleted, not failed. */
  current(gateway: string): Pod[] {
    return [...this.#members.values()].filter((pod) => this.#gatewayOf(pod) === gateway && isMember(pod, this.#options.hash) && !this.#doomed(pod));
  }

  #gatewayOf(pod: Pod): string | undefined {
    return gatewayOf(pod, this.#options.provisioner.pod);
  }

  /** Whether a member is going or must go: being deleted, failed, or not Ready in time. */
  #doomed(pod: Pod): boolean {
    if (pod.metadata?.deletionTimestamp || this.#deleting.has(pod.metadata!.name!)) return true;
    const rules = { ...this.#options.rules, readyTimeoutMs: this.#options.rules.readyTimeoutMs || 120_000 };
    return failureOf(pod, rules, Date.now()) !== undefined;
  }

  #reconcile(): void {
    if (!this.#synced || this.#signal.aborted) return;
    const { sizes, hash } = this.#options;
    for (const pod of this.#members.values()) {
      const gateway = this.#gatewayOf(pod) ?? "";
      const unwanted = !isMember(pod, hash) || !(gateway in sizes);
      if (!pod.metadata?.deletionTimestamp && (unwanted || this.#doomed(pod))) this.#delete(pod, unwanted ? "not wanted (template changed, or no pool)" : "not Ready in time, or failed");
    }
    for (const [gateway, size] of Object.entries(sizes)) {
      const current = this.current(gateway);
      const making = this.#makingOf(gateway);
      // Beyond the size (a smaller pool now): the surplus goes.
      for (const pod of current.filter((pod) => !making.has(pod.metadata!.name!)).slice(Math.max(0, size - making.size))) {
        this.#delete(pod, "beyond the pool's size");
      }
      // Behind the routing gate and not being made here: a refill a previous leader cut short; finish it.
      for (const pod of current.filter((pod) => !isAdmitted(pod) && !making.has(pod.metadata!.name!))) this.#finish(gateway, pod);
      const counted = new Set([...current.map((pod) => pod.metadata!.name!), ...making]).size;
      if ((this.#backoff.get(gateway) ?? 0) > Date.now()) continue;
      for (let i = counted; i < size && this.#active < MAKING; i++) this.#provision(memberRequest(gateway), true);
    }
  }

  #makingOf(gateway: string): Set<string> {
    let making = this.#making.get(gateway);
    if (!making) this.#making.set(gateway, making = new Set());
    return making;
  }

  /** Finishes a member a previous leader left behind its gate: the same request again, so the same pod. */
  #finish(gateway: string, pod: Pod): void {
    const annotations = pod.metadata?.annotations ?? {};
    const request = { source: POOL_SOURCE, id: annotations[ANNOTATION_REQUEST_ID] ?? "", gatewayName: gateway };
    // Only a member made by a keeper is finished: its name is its request's (else the create would make another pod).
    if (annotations[ANNOTATION_REQUEST_SOURCE] !== POOL_SOURCE || clientPodName(request) !== pod.metadata?.name || this.#active >= MAKING) return;
    this.#provision(request, false);
  }

  /** Makes (`fresh`) or finishes one member: a client pod for a request of its own, with the pool's labels. */
  #provision(request: ClientRequest, fresh: boolean): void {
    const { provisioner, hash, log, metrics } = this.#options;
    const gateway = request.gatewayName;
    const name = clientPodName(request);
    const making = this.#makingOf(gateway);
    making.add(name);
    this.#active++;
    provisionClient({ ...provisioner, kube: this.#options.kube, pod: memberSettings(provisioner.pod, hash) }, request, this.#signal)
      .then((result) => {
        if (result.ok) {
          if (fresh) metrics.countPool(gateway, "refill");
          this.#members.set(result.name, result.pod);
          return;
        }
        this.#backoff.set(gateway, Date.now() + 5_000);
        log({ msg: "warm pool: member not made", gateway, pod: result.name, reason: result.reason, error: result.message });
      }, (error) => {
        this.#backoff.set(gateway, Date.now() + 1_000);
        if (!this.#signal.aborted) log({ msg: "warm pool: member not made; will retry", gateway, error: (error as Error).message });
      })
      .finally(() => {
        this.#active--;
        making.delete(name);
        this.#reconcile();
      });
  }

  #delete(pod: Pod, why: string): void {
    const { name, namespace, uid } = pod.metadata as { name: string; namespace: string; uid: string };
    if (this.#deleting.has(name)) return;
    this.#deleting.add(name);
    // A member that may have run gets its grace period; one that never ran goes at once.
    deletePod(this.#options.kube, namespace, name, uid, { force: neverRan(pod) })
      .then(() => {
        this.#members.delete(name);
        this.#options.log({ msg: "warm pool: member deleted", pod: name, gateway: this.#gatewayOf(pod), hash: pod.metadata?.labels?.[LABEL_POOL_TEMPLATE], why });
      }, (error) => {
        if (isStatus(error, 404, 409)) this.#members.delete(name);
        else if (!this.#signal.aborted) this.#options.log({ msg: "warm pool: member not deleted; will retry", pod: name, error: (error as Error).message });
      })
      .finally(() => this.#deleting.delete(name));
  }
}
