/**
 * The service's view of the pool: one list-then-watch of the unclaimed members of the current template hash, kept
 * in memory per gateway, so a claim picks a Ready member without a LIST call. A member this process is claiming is
 * held back from its other claims; across replicas the pick is random, so concurrent claims rarely collide (and
 * when they do, the claim's `test` op decides: src/pool/claim.ts).
 */
import type { Pod } from "kubernetes-types/core/v1";
import type { StreamingRestClient } from "../kube/rest-client.ts";
import { watchPods } from "../lifecycle/watch.ts";
import type { Logger } from "../observability/log.ts";
import { gatewayOf } from "../provision/client-pod.ts";
import { sleep } from "../retry.ts";
import { LABEL_POOL_TEMPLATE, POOL_MEMBERS } from "./member.ts";

export interface PoolMembersOptions {
  kube: StreamingRestClient;
  namespace: string;
  hash: string;
  /** Whether a member may be handed out now (src/pool/member.ts `isClaimable`, with this service's rules). */
  claimable: (pod: Pod) => boolean;
  gatewayLabelKey: string;
  gatewayAnnotationKey: string;
  log: Logger;
}

/** What a claim needs of a member: who it is (name, uid) and its labels and annotations. */
type Member = Pod;

export class PoolMembers {
  readonly #options: PoolMembersOptions;
  /** Claimable members by gateway, by name. */
  readonly #ready = new Map<string, Map<string, Member>>();
  /** Names being claimed by this process right now. */
  readonly #taken = new Set<string>();
  #synced = false;
  /** Claims waiting for a member this process is trying elsewhere: woken by each {@link PoolMembers.release}. */
  #waiting: (() => void)[] = [];

  constructor(options: PoolMembersOptions) {
    this.#options = options;
  }

  /** Lists and watches until `signal` aborts. */
  run(signal: AbortSignal): Promise<void> {
    const { kube, namespace, hash, log } = this.#options;
    return watchPods({ kube, namespace, labelSelector: `${POOL_MEMBERS},${LABEL_POOL_TEMPLATE}=${hash}`, log, keep: trim }, {
      onList: (pods) => {
        this.#ready.clear();
        for (const pod of pods) this.#update(pod, false);
        this.#synced = true;
      },
      onChange: (type, pod) => this.#update(trim(pod), type === "DELETED"),
    }, signal);
  }

  /**
   * A random claimable member of `gateway`, held back from this process's other claims until {@link PoolMembers.release}.
   * Right after start it waits for the first list (at most `waitMs`): a fresh replica does not miss a full pool. When
   * every member is held by claims under way here, it waits for one of them to end (at most `waitMs`): a claim that
   * lost its member to a redelivery of its own request hands it back, and a burst uses the whole pool.
   */
  async take(gateway: string, waitMs = 1_000): Promise<Member | undefined> {
    const deadline = performance.now() + waitMs;
    while (!this.#synced && performance.now() < deadline) await sleep(10);
    for (;;) {
      const members = [...(this.#ready.get(gateway)?.values() ?? [])];
      const free = members.filter((pod) => !this.#taken.has(pod.metadata!.name!));
      const pod = free[Math.floor(Math.random() * free.length)];
      if (pod) {
        this.#taken.add(pod.metadata!.name!);
        return pod;
      }
      const left = deadline - performance.now();
      if (members.length === 0 || left <= 0) return undefined;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiting.push(() => (clearTimeout(timer), resolve()));
      });
    }
  }

  /** Ends this process's claim attempt on `pod`: a member still in the pool may be picked again; one that `left` it, not. */
  release(pod: Member, left = false): void {
    const name = pod.metadata!.name!;
    this.#taken.delete(name);
    if (left) this.#ready.get(gatewayOf(pod, this.#options) ?? "")?.delete(name);
    for (const wake of this.#waiting.splice(0)) wake();
  }

  /** Claimable members of `gateway` as last seen. */
  count(gateway: string): number {
    return this.#ready.get(gateway)?.size ?? 0;
  }

  #update(pod: Member, gone: boolean): void {
    const gateway = gatewayOf(pod, this.#options);
    const name = pod.metadata?.name;
    if (!gateway || !name) return;
    let members = this.#ready.get(gateway);
    if (!members) this.#ready.set(gateway, members = new Map());
    if (!gone && this.#options.claimable(pod)) members.set(name, pod);
    else {
      members.delete(name);
      if (gone) this.#taken.delete(name);
    }
  }
}

/** What is kept of a member: its identity, labels, annotations, and what readiness is judged by. */
function trim(pod: Pod): Member {
  const { name, namespace, uid, labels, annotations, deletionTimestamp } = pod.metadata ?? {};
  return {
    metadata: { name, namespace, uid, labels, annotations, deletionTimestamp },
    spec: {
      containers: [],
      initContainers: pod.spec?.initContainers?.map((container) => ({ name: container.name })),
      schedulingGates: pod.spec?.schedulingGates,
    },
    status: {
      phase: pod.status?.phase,
      conditions: pod.status?.conditions?.filter((condition) => condition.type === "Ready"),
      containerStatuses: pod.status?.containerStatuses?.map((status) => ({ ...status, image: "", imageID: "", lastState: {} })),
    },
  };
}
