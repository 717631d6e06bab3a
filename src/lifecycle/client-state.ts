/**
 * What a client pod's state is, and which lifecycle transitions are due for it: pure functions of the pod
 * as the API server shows it (plus the clock), so the watcher, a restart and the status endpoint all agree.
 */
import type { ContainerStatus, PodCondition, PodStatus } from "kubernetes-types/core/v1";
import type { ObjectMeta } from "kubernetes-types/meta/v1";
import { ANNOTATION_REQUEST_ID, ANNOTATION_REQUEST_SOURCE, ROUTING_GATE } from "../provision/client-pod.ts";

/**
 * Finalizer the lifecycle tracker puts on every admitted client pod: the pod cannot vanish, even while this
 * service is down, before its `deleted` event was delivered (the tracker then removes it).
 */
export const LIFECYCLE_FINALIZER = "podgateway.io/lifecycle";

/**
 * Annotation listing the transitions already delivered to K_SINK (e.g. `ready,failed`), patched after each
 * successful delivery: a restarted service reads it and emits nothing twice.
 */
export const ANNOTATION_EMITTED = "podgateway.io/lifecycle-emitted";

/**
 * The part of a pod the lifecycle rules, events and records read, and nothing else: a whole Pod is one, and the
 * tracker keeps only this of each (`essentials` in tracker.ts). A rule that wants another field does not compile
 * until the field is kept, instead of reading a made-up value.
 */
export interface TrackedPod {
  metadata?: Pick<ObjectMeta, "name" | "namespace" | "uid" | "creationTimestamp" | "deletionTimestamp" | "finalizers" | "labels" | "annotations">;
  spec?: { nodeName?: string; schedulingGates?: { name: string }[] };
  status?: Pick<PodStatus, "phase" | "reason" | "message"> & {
    conditions?: Pick<PodCondition, "type" | "status" | "lastTransitionTime">[];
    containerStatuses?: (Pick<ContainerStatus, "name" | "ready"> & {
      state?: { running?: object; terminated?: { exitCode: number; finishedAt?: string } };
    })[];
  };
}

/** A lifecycle event, emitted at most once per pod (up to at-least-once delivery). */
export type Transition = "ready" | "failed" | "deleted";

/** Order in which transitions are emitted for one pod. */
export const TRANSITIONS: readonly Transition[] = ["ready", "failed", "deleted"];

/** A client's state as `GET /clients/...` reports it. */
export type ClientState = "pending" | "ready" | "failed" | "deleted";

/** How readiness and failure are judged; from the configuration. */
export interface StateRules {
  /** The gateway's sidecar container (pod-gateway: `gateway-sidecar`); it must be running for `ready`. */
  sidecarContainer: string;
  /** A pod not Ready this long after its creation has failed (`ReadyTimeout`); 0: no limit. */
  readyTimeoutMs: number;
}

/** Why a client failed. */
export interface Failure {
  reason: string;
  message: string;
  /** When, as the pod tells it (a container's end, the deadline passed): the event's time, the same on every delivery. */
  at?: string;
}

/** Whether the provisioner let the pod be scheduled: before that it is a request in progress, not a client. */
export function isAdmitted(pod: TrackedPod): boolean {
  return !(pod.spec?.schedulingGates ?? []).some((gate) => gate.name === ROUTING_GATE);
}

/**
 * Whether the pod never ran: still behind the routing gate, or never placed on a node. Only such a pod is deleted
 * at once (`gracePeriodSeconds: 0`); one that may run gets its own grace period (SIGTERM first), see `deletePod`.
 */
export function neverRan(pod: TrackedPod): boolean {
  return !isAdmitted(pod) || !pod.spec?.nodeName;
}

/** The transitions recorded on the pod as delivered. */
export function recordedTransitions(pod: TrackedPod): Set<Transition> {
  const text = pod.metadata?.annotations?.[ANNOTATION_EMITTED] ?? "";
  return new Set(text.split(",").map((word) => word.trim()).filter((word): word is Transition => TRANSITIONS.includes(word as Transition)));
}

/** The annotation value recording `transitions`, in a stable order. */
export function recordValue(transitions: Iterable<Transition>): string {
  const set = new Set(transitions);
  return TRANSITIONS.filter((transition) => set.has(transition)).join(",");
}

/** Running, the Ready condition true, and the gateway sidecar running: traffic can flow through the gateway. */
export function isReady(pod: TrackedPod, rules: Pick<StateRules, "sidecarContainer">): boolean {
  if (pod.status?.phase !== "Running") return false;
  if (!pod.status.conditions?.some((condition) => condition.type === "Ready" && condition.status === "True")) return false;
  const sidecar = pod.status.containerStatuses?.find((status) => status.name === rules.sidecarContainer);
  return Boolean(sidecar?.state?.running);
}

/** When the pod became Ready, if the kubelet said so. */
export function readySince(pod: TrackedPod): string | undefined {
  return pod.status?.conditions?.find((condition) => condition.type === "Ready" && condition.status === "True")?.lastTransitionTime;
}

/** When the pod ended: its last container's end, else when it stopped being Ready. */
function endedAt(pod: TrackedPod): string | undefined {
  const ends = (pod.status?.containerStatuses ?? []).map((status) => status.state?.terminated?.finishedAt).filter((at): at is string => Boolean(at));
  if (ends.length > 0) return ends.sort().at(-1);
  return pod.status?.conditions?.find((condition) => condition.type === "Ready" && condition.status === "False")?.lastTransitionTime;
}

/**
 * Whether and why the client failed: the pod ended (failed, evicted, `activeDeadlineSeconds` exceeded, or
 * exited), or it has not been Ready within `readyTimeoutMs` of its creation (and never was, as far as we know).
 */
export function failureOf(pod: TrackedPod, rules: StateRules, now: number, wasReady = false): Failure | undefined {
  const phase = pod.status?.phase;
  if (phase === "Failed") {
    const reason = pod.status?.reason || "PodFailed";
    return { reason, message: pod.status?.message || `pod ${pod.metadata?.name} failed (${reason})`, at: endedAt(pod) };
  }
  if (phase === "Succeeded") {
    return { reason: "Completed", message: `the client containers of pod ${pod.metadata?.name} exited`, at: endedAt(pod) };
  }
  if (rules.readyTimeoutMs > 0 && !wasReady && !isReady(pod, rules) && !pod.metadata?.deletionTimestamp) {
    const created = Date.parse(pod.metadata?.creationTimestamp ?? "");
    if (Number.isFinite(created) && now - created >= rules.readyTimeoutMs) {
      return {
        reason: "ReadyTimeout",
        message: `pod ${pod.metadata?.name} was not Ready with a running ${rules.sidecarContainer} within ${Math.round(rules.readyTimeoutMs / 1000)} s`,
        at: new Date(created + rules.readyTimeoutMs).toISOString(),
      };
    }
  }
  return undefined;
}

/**
 * The transitions due for a pod and not yet `emitted`, in emission order. `gone`: the pod no longer exists.
 * A pod being deleted, or one that failed, is never reported ready afterwards; `deleted` always comes last.
 */
export function dueTransitions(pod: TrackedPod, gone: boolean, emitted: ReadonlySet<Transition>, rules: StateRules, now: number): Transition[] {
  const deleting = gone || Boolean(pod.metadata?.deletionTimestamp);
  const failure = emitted.has("failed") ? undefined : failureOf(pod, rules, now, emitted.has("ready"));
  const due: Transition[] = [];
  if (!deleting && !failure && !emitted.has("failed") && !emitted.has("ready") && isReady(pod, rules)) due.push("ready");
  if (failure) due.push("failed");
  if (deleting && !emitted.has("deleted")) due.push("deleted");
  return due;
}

/** A client as `GET /clients/...` shows it. */
export interface ClientStatus {
  pod_name: string;
  namespace: string;
  gateway_name?: string;
  state: ClientState;
  /** The pod's own phase (`Pending`, `Running`, …), beside our state. */
  phase?: string;
  /** The node the scheduler placed the pod on; none while it waits behind the routing gate. */
  node_name?: string;
  reason?: string;
  message?: string;
  /** The pending event this client was created for. */
  request: { source?: string; id?: string };
  created_at?: string;
  ready_at?: string;
}

/** The state of a pod that exists (or, with `gone`, just stopped existing). */
export function clientStatus(pod: TrackedPod, rules: StateRules, now: number, gateway: string | undefined, gone = false): ClientStatus {
  const annotations = pod.metadata?.annotations ?? {};
  const recorded = recordedTransitions(pod);
  const failure = failureOf(pod, rules, now, recorded.has("ready"));
  let state: ClientState;
  if (gone || pod.metadata?.deletionTimestamp) state = "deleted";
  else if (failure || recorded.has("failed")) state = "failed";
  else if (isAdmitted(pod) && isReady(pod, rules)) state = "ready";
  else state = "pending";
  return {
    pod_name: pod.metadata?.name ?? "",
    namespace: pod.metadata?.namespace ?? "",
    gateway_name: gateway,
    state,
    phase: pod.status?.phase,
    node_name: pod.spec?.nodeName,
    ...(state === "failed" && failure ? { reason: failure.reason, message: failure.message } : {}),
    ...(state === "failed" && !failure ? { reason: "Failed", message: "the client failed earlier (recorded on the pod)" } : {}),
    request: { source: annotations[ANNOTATION_REQUEST_SOURCE], id: annotations[ANNOTATION_REQUEST_ID] },
    created_at: pod.metadata?.creationTimestamp,
    ready_at: readySince(pod),
  };
}
