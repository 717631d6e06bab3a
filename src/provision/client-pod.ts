import type { Pod, PodSpec } from "kubernetes-types/core/v1";
import type { ObjectMeta } from "kubernetes-types/meta/v1";
import { traceAnnotations, type TraceContext } from "../events/trace.ts";

/** What every client pod starts from: the metadata and spec of the operator's template (src/provision/pod-template.ts). */
export interface PodTemplate {
  metadata: ObjectMeta;
  spec: PodSpec;
}

/**
 * Without a template: one locked-down container. Only our container is locked down: the gateway's init
 * container and sidecar bring their own securityContext (they need NET_ADMIN to set up the routes), and a
 * pod-level one would override it.
 */
export const DEFAULT_TEMPLATE: PodTemplate = {
  metadata: {},
  spec: {
    restartPolicy: "Always",
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    containers: [{
      name: "client",
      image: "alpine/curl",
      command: ["sleep", "infinity"],
      securityContext: {
        runAsNonRoot: true,
        runAsUser: 65532,
        runAsGroup: 65532,
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ["ALL"] },
        seccompProfile: { type: "RuntimeDefault" },
      },
    }],
  },
};
import { digest } from "../util/digest.ts";

/** What the operator decides about every client pod; events never choose any of it. */
export interface ClientPodSettings {
  namespace: string;
  /** The operator's pod; default {@link DEFAULT_TEMPLATE}. Never holds what {@link clientPod} sets. */
  template?: PodTemplate;
  /** Image of the first container, over the template's (`--client-image`); empty or absent: the template's. */
  image?: string;
  /** Command of the first container, over the template's (`--client-command`). */
  command?: string[];
  /** Label key the pod-gateway webhook matches (chart: `setGatewayLabel`); empty to set no label. */
  gatewayLabelKey: string;
  /** Annotation key the pod-gateway webhook matches (chart: `setGatewayAnnotation`); empty to set none. */
  gatewayAnnotationKey: string;
  /** Maximum lifetime of a client (`activeDeadlineSeconds`): the kubelet then fails the pod (`DeadlineExceeded`). */
  activeDeadlineSeconds?: number;
}

/** The request a client pod stands for: Knative's dedupe key is the pair (source, id). */
export interface ClientRequest {
  source: string;
  id: string;
  gatewayName: string;
  /** The request's W3C trace context, recorded on the pod for its lifecycle events. */
  trace?: TraceContext;
}

/** Scheduling gate held until the provisioner has seen the gateway's webhook mutate the pod. */
export const ROUTING_GATE = "podgateway.io/routing-verified";
export const ANNOTATION_REQUEST_SOURCE = "podgateway.io/request-source";
export const ANNOTATION_REQUEST_ID = "podgateway.io/request-id";
export const LABEL_NAME = "app.kubernetes.io/name";
export const LABEL_MANAGED_BY = "app.kubernetes.io/managed-by";
export const LABEL_COMPONENT = "app.kubernetes.io/component";
export const MANAGED_BY = "podgateway-provisioner";

/**
 * The pod name for a request: the same (source, id) always gives the same name, so a redelivered event,
 * even to another replica at the same moment, meets the pod of its first delivery instead of a second one.
 */
export function clientPodName(request: Pick<ClientRequest, "source" | "id">): string {
  // 80 bits of SHA-256: collisions are negligible, and a collision is still detected (request annotations).
  return `pgw-client-${digest(request.source, request.id).slice(0, 20)}`;
}

/**
 * The client pod as we ask for it. It is born with a scheduling gate: the scheduler ignores it until the
 * provisioner has checked that the gateway's webhook routed it, so an unrouted pod can never run.
 */
export function clientPod(settings: ClientPodSettings, request: ClientRequest): Pod {
  const { metadata, spec } = settings.template ?? DEFAULT_TEMPLATE;
  const labels: Record<string, string> = {
    ...metadata.labels,
    [LABEL_NAME]: "podgateway-client",
    [LABEL_MANAGED_BY]: MANAGED_BY,
    [LABEL_COMPONENT]: "client",
  };
  const annotations: Record<string, string> = {
    ...metadata.annotations,
    [ANNOTATION_REQUEST_SOURCE]: request.source,
    [ANNOTATION_REQUEST_ID]: request.id,
    ...traceAnnotations(request.trace),
  };
  if (settings.gatewayLabelKey) labels[settings.gatewayLabelKey] = request.gatewayName;
  if (settings.gatewayAnnotationKey) annotations[settings.gatewayAnnotationKey] = request.gatewayName;
  // Shallow copies only: the template itself is shared by every request and never changed.
  const [first, ...others] = spec.containers;
  const containers = settings.image || settings.command
    ? [{ ...first!, ...(settings.image ? { image: settings.image } : {}), ...(settings.command ? { command: settings.command } : {}) }, ...others]
    : spec.containers;

  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { ...metadata, name: clientPodName(request), namespace: settings.namespace, labels, annotations },
    spec: {
      ...spec,
      schedulingGates: [{ name: ROUTING_GATE }],
      ...(settings.activeDeadlineSeconds ? { activeDeadlineSeconds: settings.activeDeadlineSeconds } : {}),
      containers,
    },
  };
}

/** The gateway a client pod was created for, from the label or annotation the webhook matches. */
export function gatewayOf(pod: { metadata?: Pick<ObjectMeta, "labels" | "annotations"> }, keys: Pick<ClientPodSettings, "gatewayLabelKey" | "gatewayAnnotationKey">): string | undefined {
  return (keys.gatewayLabelKey && pod.metadata?.labels?.[keys.gatewayLabelKey]) ||
    (keys.gatewayAnnotationKey && pod.metadata?.annotations?.[keys.gatewayAnnotationKey]) || undefined;
}
