/**
 * W3C trace context through the provisioner: a request's `traceparent`/`tracestate` (the CloudEvents
 * distributed-tracing extension, else the HTTP headers of the same names, as Knative's broker sends them)
 * go onto its result, onto the client pod (annotations) and from there onto the pod's lifecycle events, so a
 * trace the broker started continues through here. No tracer: the context is carried, not extended.
 */
import type { CloudEventV1 } from "cloudevents";
import type { ObjectMeta } from "kubernetes-types/meta/v1";

/** A valid W3C trace context. */
export interface TraceContext {
  traceparent: string;
  tracestate?: string;
}

export const ANNOTATION_TRACEPARENT = "podgateway.io/traceparent";
export const ANNOTATION_TRACESTATE = "podgateway.io/tracestate";

/** version-traceid-parentid-flags, lower-case hex; later versions may append fields (W3C Trace Context §3.2). */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-[^\s]*)?$/;
const ZEROS = /^0+$/;
/** At most 32 list members of printable ASCII; generous checks only, the value is passed on, never interpreted. */
const TRACESTATE = /^[\x20-\x7e]{0,512}$/;

/** The trace context of a value pair, or none when `traceparent` is absent or invalid (a bad one is dropped, not passed on). */
export function traceContext(traceparent: unknown, tracestate?: unknown): TraceContext | undefined {
  if (typeof traceparent !== "string") return undefined;
  const match = TRACEPARENT.exec(traceparent);
  if (!match || match[1] === "ff" || (match[1] === "00" && match[5]) || ZEROS.test(match[2]!) || ZEROS.test(match[3]!)) return undefined;
  const state = typeof tracestate === "string" ? tracestate.trim() : "";
  return state && TRACESTATE.test(state) ? { traceparent, tracestate: state } : { traceparent };
}

/** A request's trace context: the event's own extension first (it travels with the event), else the HTTP headers. */
export function traceOf(event: CloudEventV1<unknown>, headers: Headers): TraceContext | undefined {
  return traceContext(event.traceparent, event.tracestate) ??
    traceContext(headers.get("traceparent") ?? undefined, headers.get("tracestate") ?? undefined);
}

/** The event with the trace context's extensions; the same event when there is none. */
export function withTrace<T>(event: CloudEventV1<T>, trace: TraceContext | undefined): CloudEventV1<T> {
  if (!trace) return event;
  return { ...event, ...entries(trace, "traceparent", "tracestate") };
}

/** W3C headers for an HTTP request carrying the event (to K_SINK), so the receiver's own tracing continues the trace. */
export function traceHeaders(event: CloudEventV1<unknown>): Record<string, string> {
  return entries(traceContext(event.traceparent, event.tracestate), "traceparent", "tracestate");
}

/** The annotations that record a request's trace context on its client pod. */
export function traceAnnotations(trace: TraceContext | undefined): Record<string, string> {
  return entries(trace, ANNOTATION_TRACEPARENT, ANNOTATION_TRACESTATE);
}

/** The trace context recorded on a client pod. */
export function traceOfPod(pod: { metadata?: Pick<ObjectMeta, "annotations"> }): TraceContext | undefined {
  const annotations = pod.metadata?.annotations;
  return annotations && traceContext(annotations[ANNOTATION_TRACEPARENT], annotations[ANNOTATION_TRACESTATE]);
}

/** The context as two named entries (extensions, headers, annotations); no `tracestate` entry when it has none. */
function entries(trace: TraceContext | undefined, parentName: string, stateName: string): Record<string, string> {
  if (!trace) return {};
  return trace.tracestate ? { [parentName]: trace.traceparent, [stateName]: trace.tracestate } : { [parentName]: trace.traceparent };
}
