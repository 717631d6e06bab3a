/**
 * The client lifecycle tracker: watches the client pods this service created and delivers
 * `io.podgateway.client.ready|failed|deleted` to K_SINK, each once per pod (at least once, same id).
 *
 * Level-triggered: every change of a pod, and a periodic sweep, reconcile that pod, i.e. compare what is
 * due (from the pod itself, see client-state.ts) with what was delivered (recorded on the pod in an
 * annotation, plus an in-memory set for the moment before our own patch is seen). Our finalizer keeps a
 * deleted pod around until its `deleted` event is delivered, so a deletion while we are down is not missed.
 */
import type { Pod } from "kubernetes-types/core/v1";
import type { ResultStamp } from "../events/results.ts";
import type { EventSink } from "../events/sink.ts";
import { ANNOTATION_TRACEPARENT, ANNOTATION_TRACESTATE, traceOfPod, withTrace } from "../events/trace.ts";
import { isStatus } from "../kube/errors.ts";
import { type Fence, fenced, signalFence } from "../kube/fence.ts";
import { deletePod } from "../kube/pods.ts";
import type { StreamingRestClient } from "../kube/rest-client.ts";
import type { Logger } from "../observability/log.ts";
import { ANNOTATION_REQUEST_ID, ANNOTATION_REQUEST_SOURCE, gatewayOf } from "../provision/client-pod.ts";
import { sleep } from "../retry.ts";
import {
  dueTransitions,
  failureOf,
  ANNOTATION_EMITTED,
  isAdmitted,
  LIFECYCLE_FINALIZER,
  neverRan,
  recordedTransitions,
  type StateRules,
  type TrackedPod,
  type Transition,
} from "./client-state.ts";
import { lifecycleEvent } from "./events.ts";
import { addFinalizer, recordTransitions, removeFinalizer } from "./records.ts";
import { watchPods } from "./watch.ts";

/** Everything the tracker needs; built once at start-up. */
export interface TrackerOptions extends StateRules {
  kube: StreamingRestClient;
  namespace: string;
  /** Selects exactly the pods this service created. */
  labelSelector: string;
  /** Where lifecycle events go; without one no event is delivered and no finalizer is added (only the sweep runs). */
  sink?: EventSink;
  stamp: ResultStamp;
  /**
   * A pod still behind the routing gate this long after its creation is an abandoned request (its sender gave
   * up, or the service died mid-way): it is deleted. 0: never.
   */
  gatedPodTimeoutMs?: number;
  log: Logger;
  gatewayLabelKey: string;
  gatewayAnnotationKey: string;
  /** How often every known pod is reconciled again: retries failed deliveries, notices ready timeouts. */
  resyncMs?: number;
  /** Watch tuning, for tests. */
  watchSeconds?: number;
  now?: () => number;
}

interface Entry {
  pod: TrackedPod;
  /** The pod no longer exists (a DELETED event, or missing from a fresh list). */
  gone: boolean;
  /** Transitions delivered by this process: covers the moment before our record patch is seen. */
  emitted: Set<Transition>;
}

const RECONCILING = 16;

export class LifecycleTracker {
  readonly #options: TrackerOptions;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();
  readonly #running = new Set<string>();
  readonly #again = new Set<string>();
  readonly #waiting: (() => void)[] = [];
  #active = 0;
  #synced = false;
  #startedAt = 0;
  /** This run's fence, and the client fenced with it: every call, write and delivery of the run goes through them. */
  #fence: Fence = signalFence(AbortSignal.abort());
  #kube: StreamingRestClient;

  constructor(options: TrackerOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#kube = fenced(options.kube, this.#fence);
  }

  /**
   * Watches and reconciles until `fence.signal` aborts. The fence reaches every API call and K_SINK delivery,
   * those under way included: once it is down (a leader's term is over), nothing more is written.
   */
  async run(fence: AbortSignal | Fence): Promise<void> {
    this.#fence = fence instanceof AbortSignal ? signalFence(fence) : fence;
    this.#kube = fenced(this.#options.kube, this.#fence);
    const signal = this.#fence.signal;
    const kube = this.#kube;
    const { namespace, labelSelector, log } = this.#options;
    const sweep = setInterval(() => this.#sweep(), this.#options.resyncMs ?? 5_000);
    this.#startedAt = Date.now();
    try {
      const keep = (pod: Pod) => essentials(pod, this.#options);
      await watchPods({ kube, namespace, labelSelector, log, keep, watchSeconds: this.#options.watchSeconds }, {
        onList: (pods) => this.#onList(pods),
        onChange: (type, pod) => this.#onChange(type, pod),
      }, signal);
    } finally {
      clearInterval(sweep);
    }
  }

  /** Waits until no reconciliation runs: for tests and for a clean shutdown. */
  async idle(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.#running.size > 0 && Date.now() < deadline) await sleep(20);
  }

  /** `pods` come trimmed already: the list keeps only {@link essentials} of each page. */
  #onList(pods: TrackedPod[]): void {
    const present = new Set<string>();
    for (const pod of pods) {
      const uid = pod.metadata?.uid;
      if (!uid) continue;
      present.add(uid);
      this.#update(uid, pod, false);
    }
    // Gone while we were not watching (a 410 or a broken connection in between).
    for (const [uid, entry] of this.#entries) {
      if (!present.has(uid) && !entry.gone) this.#update(uid, entry.pod, true);
    }
    // How long a new leader needs to list and resume (the first list of a term), for the scale runs.
    if (!this.#synced) this.#options.log({ msg: "client lifecycle: listed", pods: pods.length, ms: Date.now() - this.#startedAt });
    this.#synced = true;
  }

  #onChange(type: "ADDED" | "MODIFIED" | "DELETED", pod: Pod): void {
    const uid = pod.metadata?.uid;
    if (uid) this.#update(uid, essentials(pod, this.#options), type === "DELETED");
  }

  /** `pod`: what the tracker keeps of it ({@link essentials}). */
  #update(uid: string, pod: TrackedPod, gone: boolean): void {
    const entry = this.#entries.get(uid);
    if (entry) {
      entry.pod = pod;
      entry.gone ||= gone;
    } else {
      this.#entries.set(uid, { pod, gone, emitted: new Set() });
    }
    this.#schedule(uid);
  }

  #sweep(): void {
    for (const uid of this.#entries.keys()) this.#schedule(uid);
  }

  /** One reconciliation per pod at a time; a change meanwhile makes it run once more afterwards. */
  #schedule(uid: string): void {
    if (!this.#fence.holds()) return;
    if (this.#running.has(uid)) {
      this.#again.add(uid);
      return;
    }
    this.#running.add(uid);
    (async () => {
      await this.#turn();
      try {
        do {
          this.#again.delete(uid);
          await this.#reconcile(uid);
        } while (this.#again.has(uid));
      } catch (error) {
        const entry = this.#entries.get(uid);
        // Once the fence is down the run is over: what was cut short is its successor's (or the next run's) to redo.
        if (!this.#fence.signal.aborted) this.#options.log({ msg: "client lifecycle: will retry", pod: entry?.pod.metadata?.name, error: (error as Error).message });
      } finally {
        this.#running.delete(uid);
        this.#endTurn();
      }
    })();
  }

  /**
   * At most RECONCILING pods between delivering and recording at once: bounds the API burst after a list of
   * thousands, and what a leader killed mid-way can have delivered without recording (delivered again by its
   * successor, same id).
   */
  async #turn(): Promise<void> {
    if (this.#active < RECONCILING) {
      this.#active++;
      return;
    }
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
  }

  #endTurn(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#active--;
  }

  async #reconcile(uid: string): Promise<void> {
    const entry = this.#entries.get(uid);
    if (!entry) return;
    const { sink, stamp, log } = this.#options;
    const kube = this.#kube;
    const fence = this.#fence;
    const pod = entry.pod;
    // A pod still behind the routing gate is a request in progress; if it never gets past, no client existed.
    if (!isAdmitted(pod)) {
      if (entry.gone) this.#entries.delete(uid);
      else if (this.#abandoned(pod)) {
        const { namespace, name } = pod.metadata as { namespace: string; name: string };
        await deletePod(kube, namespace, name, uid, { force: true }).catch((error) => {
          if (!isStatus(error, 404, 409)) throw error;
        });
        log({ msg: "abandoned request: gated pod deleted", pod: name, causationid: pod.metadata?.annotations?.[ANNOTATION_REQUEST_ID] });
      }
      return;
    }
    if (!sink) {
      if (entry.gone) this.#entries.delete(uid);
      return;
    }
    const deleting = entry.gone || Boolean(pod.metadata?.deletionTimestamp);
    if (!deleting && !pod.metadata?.finalizers?.includes(LIFECYCLE_FINALIZER)) await addFinalizer(kube, pod);

    const emitted = new Set([...recordedTransitions(pod), ...entry.emitted]);
    const now = this.#now();
    for (const transition of dueTransitions(pod, entry.gone, emitted, this.#options, now)) {
      const name = pod.metadata?.name ?? "";
      const namespace = pod.metadata?.namespace ?? this.#options.namespace;
      const failure = transition === "failed" ? failureOf(pod, this.#options, now, emitted.has("ready")) : undefined;
      const event = withTrace(lifecycleEvent(stamp, pod, transition, {
        pod_name: name,
        namespace,
        gateway_name: gatewayOf(pod, this.#options),
        ...(failure ? { reason: failure.reason } : {}),
        message: failure?.message ?? describe(transition, namespace, name),
      }, failure?.at), traceOfPod(pod));
      await sink.send(event, fence.signal, () => fence.holds());
      entry.emitted.add(transition);
      emitted.add(transition);
      log({ msg: "client lifecycle", type: event.type, id: event.id, pod: name, reason: failure?.reason, causationid: event.causationid as string | undefined, traceparent: event.traceparent as string | undefined });

      if (transition === "deleted") {
        if (!entry.gone) await removeFinalizer(kube, pod);
      } else if (!entry.gone) {
        await recordTransitions(kube, pod, emitted);
      }
      // A client that was never Ready in time is removed: it must neither hold a capacity slot nor turn
      // Ready after we said it failed. Its `deleted` event follows.
      if (failure?.reason === "ReadyTimeout" && !entry.gone) {
        // With its own grace period when it may have run (its teardown gets SIGTERM); at once when it never did.
        await deletePod(kube, namespace, name, uid, { force: neverRan(pod) }).catch((error) => {
          if (!isStatus(error, 404, 409)) throw error;
        });
      }
    }
    if (entry.gone && (emitted.has("deleted") || !isAdmitted(pod))) this.#entries.delete(uid);
  }

  #abandoned(pod: TrackedPod): boolean {
    const timeoutMs = this.#options.gatedPodTimeoutMs ?? 0;
    const created = Date.parse(pod.metadata?.creationTimestamp ?? "");
    return timeoutMs > 0 && !pod.metadata?.deletionTimestamp && Number.isFinite(created) && this.#now() - created >= timeoutMs;
  }

}

/**
 * What the tracker keeps of a pod: only what the state rules, the events and the records read (a
 * {@link TrackedPod}), copied, never invented. At 20,000 pods whole Pod objects (spec, managed fields, every
 * status detail) would be most of the controller's memory.
 */
export function essentials(pod: Pod, options: Pick<TrackerOptions, "gatewayLabelKey" | "gatewayAnnotationKey">): TrackedPod {
  const { metadata = {}, spec, status } = pod;
  const pick = (from: Record<string, string> | undefined, keys: string[]) => {
    const kept: Record<string, string> = {};
    for (const key of keys) if (key && from?.[key] !== undefined) kept[key] = from[key]!;
    return kept;
  };
  const ready = status?.conditions?.find((condition) => condition.type === "Ready");
  return {
    metadata: {
      name: metadata.name,
      namespace: metadata.namespace,
      uid: metadata.uid,
      creationTimestamp: metadata.creationTimestamp,
      deletionTimestamp: metadata.deletionTimestamp,
      finalizers: metadata.finalizers,
      labels: pick(metadata.labels, [options.gatewayLabelKey]),
      annotations: pick(metadata.annotations, [
        ANNOTATION_REQUEST_ID,
        ANNOTATION_REQUEST_SOURCE,
        ANNOTATION_EMITTED,
        ANNOTATION_TRACEPARENT,
        ANNOTATION_TRACESTATE,
        options.gatewayAnnotationKey,
      ]),
    },
    spec: { nodeName: spec?.nodeName, schedulingGates: spec?.schedulingGates?.map((gate) => ({ name: gate.name })) },
    status: {
      phase: status?.phase,
      reason: status?.reason,
      message: status?.message,
      conditions: ready ? [{ type: "Ready", status: ready.status, lastTransitionTime: ready.lastTransitionTime }] : [],
      containerStatuses: status?.containerStatuses?.map((container) => ({
        name: container.name,
        ready: container.ready,
        state: {
          ...(container.state?.running ? { running: {} } : {}),
          ...(container.state?.terminated ? { terminated: { exitCode: container.state.terminated.exitCode, finishedAt: container.state.terminated.finishedAt } } : {}),
        },
      })),
    },
  };
}

function describe(transition: Transition, namespace: string, name: string): string {
  switch (transition) {
    case "ready":
      return `client pod ${namespace}/${name} is running and Ready, its gateway sidecar runs`;
    case "deleted":
      return `client pod ${namespace}/${name} is deleted`;
    default:
      return `client pod ${namespace}/${name} failed`;
  }
}
