/**
 * The service's part of the client lifecycle: the release handler, the per-gateway capacity, and the
 * `/clients` status routes. Runtime-neutral. The tracker (ready/failed/deleted events, finalizer) is the
 * controller's (src/controller/), never the service's: the service must be free to scale to zero.
 */
import type { CloudEventV1 } from "cloudevents";
import type { Hono } from "hono";
import type { ResultStamp } from "../events/results.ts";
import type { StreamingRestClient } from "../kube/rest-client.ts";
import type { Logger } from "../observability/log.ts";
import type { ProvisionerOptions } from "../provision/provisioner.ts";
import { type CapacityOptions, claimSlot } from "./capacity.ts";
import { releaseClient } from "./release.ts";
import { clientRoutes } from "./status.ts";

export interface LifecycleSettings {
  kube: StreamingRestClient;
  namespace: string;
  stamp: ResultStamp;
  log: Logger;
  gatewayLabelKey: string;
  gatewayAnnotationKey: string;
  sidecarContainer: string;
  /** 0: no limit. */
  readyTimeoutMs: number;
  /** 0: unlimited. */
  maxClientsPerGateway: number;
}

/** What the app and the entrypoints use of the lifecycle. */
export interface Lifecycle {
  /** The capacity check, for {@link ProvisionerOptions.admit}; absent when unlimited. */
  admit?: ProvisionerOptions["admit"];
  /** Answers one `io.podgateway.client.release` event (`data` already decoded from JSON). */
  release: (event: CloudEventV1<unknown>, data: unknown) => Promise<CloudEventV1<unknown>>;
  /** `GET /clients/{pod}`, `GET /clients?gateway=`, `GET /clients/watch?gateway=`. */
  routes: Hono;
}

export function createLifecycle(settings: LifecycleSettings): Lifecycle {
  const { kube, namespace, stamp } = settings;
  const rules = { sidecarContainer: settings.sidecarContainer, readyTimeoutMs: settings.readyTimeoutMs };
  const keys = { gatewayLabelKey: settings.gatewayLabelKey, gatewayAnnotationKey: settings.gatewayAnnotationKey };
  const capacity: CapacityOptions | undefined = settings.maxClientsPerGateway > 0
    ? { kube, namespace, maxPerGateway: settings.maxClientsPerGateway, gatewayLabelKey: settings.gatewayLabelKey }
    : undefined;
  return {
    admit: capacity
      ? async (pod, request, signal) => {
        const claim = await claimSlot(capacity, request.gatewayName, pod, signal);
        return claim.ok ? undefined : { reason: "GatewayAtCapacity", message: claim.message };
      }
      : undefined,
    release: (event, data) => releaseClient({ kube, namespace, stamp, capacity }, event, data),
    routes: clientRoutes({ kube, namespace, log: settings.log, ...rules, ...keys }),
  };
}
