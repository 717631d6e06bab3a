import * as v from "valibot";
import { EventTypes } from "./types.ts";

/**
 * A Kubernetes label value: at most 63 characters, alphanumeric at both ends, `-`, `_` or `.` inside.
 * The gateway name becomes the value of the `setGateway` label, so it must be one.
 */
export const LabelValue = v.pipe(
  v.string("must be a string"),
  v.nonEmpty("must not be empty"),
  v.maxLength(63, "must be at most 63 characters (a Kubernetes label value)"),
  v.regex(
    /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/,
    "must be a Kubernetes label value: ASCII letters and digits at both ends, '-', '_' or '.' inside",
  ),
);

/** Data of `io.podgateway.client.pending`. */
export const PendingData = v.object({
  /** Name of the pod-gateway that must route the client, e.g. `foo` for `setGateway=foo`. */
  gateway_name: LabelValue,
  /** Free text for the sender's own use: checked (a string, at most 1024 characters), then ignored (not logged, not on the pod). */
  message: v.optional(v.pipe(v.string("must be a string"), v.maxLength(1024, "must be at most 1024 characters"))),
}, "must be a JSON object");
export type PendingData = v.InferOutput<typeof PendingData>;

/** Data of `io.podgateway.client.scheduling.done`. */
export const DoneData = v.strictObject({
  pod_name: v.string(),
  namespace: v.string(),
  gateway_name: v.string(),
  message: v.string(),
  /** Which path served the request: a warm pool member claimed (`pool`), or a pod made for it (`cold`). */
  served_from: v.picklist(["pool", "cold"]),
});
export type DoneData = v.InferOutput<typeof DoneData>;

/** Machine-readable reasons of a failed event. */
export const FailureReason = v.picklist([
  /** The event data broke the schema; `message` names the field and the rule. */
  "InvalidEventData",
  /** No pod-gateway webhook mutated a pod labelled for this gateway: unknown gateway or not routed here. */
  "GatewayNotRouted",
  /** The API server refused the pod for good: forbidden, quota, missing namespace, invalid object. */
  "PodRejected",
  /** A pod with the derived name exists but belongs to another request (a hash collision, or tampering). */
  "NameConflict",
  /** `--max-clients-per-gateway` clients of this gateway exist already; a release frees a slot. */
  "GatewayAtCapacity",
  /** `--gateways` is set and does not name this gateway: refused before any API call. */
  "UnknownGateway",
  /**
   * The API server refused a step after the pod was created (claiming its capacity slot, lifting its routing
   * gate) for good, e.g. 403: the pod was deleted before it could be scheduled; `message` says which step.
   */
  "AdmissionFailed",
]);
export type FailureReason = v.InferOutput<typeof FailureReason>;

/** Data of `io.podgateway.client.scheduling.failed`. */
export const FailedData = v.strictObject({
  reason: FailureReason,
  message: v.string(),
  gateway_name: v.optional(v.string()),
});
export type FailedData = v.InferOutput<typeof FailedData>;

/** Data of `io.podgateway.client.ready|failed|deleted`: which client, and for `failed` why. */
export const ClientLifecycleData = v.strictObject({
  pod_name: v.string(),
  namespace: v.string(),
  gateway_name: v.optional(v.string()),
  /** For `failed`: `Evicted`, `DeadlineExceeded` (max lifetime), `ReadyTimeout`, or the pod's own reason. */
  reason: v.optional(v.string()),
  message: v.string(),
});
export type ClientLifecycleData = v.InferOutput<typeof ClientLifecycleData>;

/** A pod name: a DNS subdomain. */
const PodName = v.pipe(
  v.string("must be a string"),
  v.maxLength(253, "must be at most 253 characters"),
  v.regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, "must be a pod name (lowercase letters, digits, '-' and '.')"),
);

/**
 * Data of `io.podgateway.client.release`: the client pod by name (`pod_name`, from the done event), or the
 * original pending event's `source` and `id` (the pod name is derived from them).
 */
export const ReleaseData = v.union([
  v.strictObject({ pod_name: PodName }),
  v.strictObject({ source: v.pipe(v.string("must be a string"), v.nonEmpty("must not be empty")), id: v.pipe(v.string("must be a string"), v.nonEmpty("must not be empty")) }),
], "must be a JSON object with either pod_name, or source and id (of the pending event)");
export type ReleaseData = v.InferOutput<typeof ReleaseData>;

/** Data of `io.podgateway.client.release.done`. */
export const ReleaseDoneData = v.strictObject({
  pod_name: v.string(),
  namespace: v.string(),
  /** The same whether this delivery deleted the pod or an earlier one did: every delivery gets the same answer. */
  message: v.string(),
});
export type ReleaseDoneData = v.InferOutput<typeof ReleaseDoneData>;

/** Data of `io.podgateway.client.release.failed`. */
export const ReleaseFailedData = v.strictObject({
  reason: v.picklist([
    "InvalidEventData",
    /** The named pod exists but this service did not create it: it is never deleted. */
    "NotAClient",
    /** The pod of that name was created for another request than the one named by `source`/`id`. */
    "NameConflict",
  ]),
  message: v.string(),
  pod_name: v.optional(v.string()),
});
export type ReleaseFailedData = v.InferOutput<typeof ReleaseFailedData>;

/**
 * The data schema of each event this service sends, by CloudEvent type. The service builds that data from the
 * inferred types and never parses it (no CPU on the hot path); the tests hold every answer and lifecycle event
 * they receive to it (test/support/received.ts), so a field that goes missing or changes fails them.
 */
export const OutputData: Readonly<Record<string, v.GenericSchema>> = {
  [EventTypes.done]: DoneData,
  [EventTypes.failed]: FailedData,
  [EventTypes.clientReady]: ClientLifecycleData,
  [EventTypes.clientFailed]: ClientLifecycleData,
  [EventTypes.clientDeleted]: ClientLifecycleData,
  [EventTypes.releaseDone]: ReleaseDoneData,
  [EventTypes.releaseFailed]: ReleaseFailedData,
};

/** Turns a valibot failure into one sentence naming the field and the rule, e.g. `data.gateway_name must be ...`. */
export function describeIssues(issues: readonly v.BaseIssue<unknown>[]): string {
  return issues
    .map((issue) => `${["data", v.getDotPath(issue)].filter(Boolean).join(".")} ${issue.message}`)
    .join("; ");
}
