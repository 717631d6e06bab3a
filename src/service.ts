import type { Hono } from "hono";
import { createApp } from "./app.ts";
import { senderAuth } from "./auth/sender-auth.ts";
import type { Config } from "./config.ts";
import { parseCeOverrides } from "./events/results.ts";
import { httpSink } from "./events/sink.ts";
import { createLifecycle } from "./lifecycle/lifecycle.ts";
import { inClusterClient, isInCluster } from "./kube/in-cluster.ts";
import { kubeconfigClient, kubeconfigPath } from "./kube/kubeconfig.ts";
import { leasePermissions, type Permission, podPermissions, requirePermissions } from "./kube/access.ts";
import type { HttpRestClient } from "./kube/http-client.ts";
import type { FetcherFactory, RestClient } from "./kube/rest-client.ts";
import { jsonLogger, type Logger } from "./observability/log.ts";
import { Metrics } from "./observability/metrics.ts";
import type { ProvisionerOptions } from "./provision/provisioner.ts";

/** A ready-to-serve service: the app, and how it reaches Kubernetes. */
export interface Service {
  app: Hono;
  kube: HttpRestClient;
  /** Where the API server is and how we authenticate, for the start-up log line (no secrets). */
  describe: string;
  /**
   * Background work to run until shutdown (the controller's leader election and lifecycle watch); entrypoints
   * start it once listening and abort the signal on SIGTERM.
   */
  background?: (signal: AbortSignal) => Promise<void>;
}

/**
 * Wires the app from its configuration. Runtime-neutral: entrypoints pass their way of making TLS `fetch`es.
 * @throws Error when the kubeconfig or K_CE_OVERRIDES is unusable, before anything listens.
 */
export async function createService(
  config: Config,
  fetcherFor: FetcherFactory,
  env: Record<string, string | undefined>,
  log: Logger = jsonLogger,
): Promise<Service> {
  if (config["client-lifecycle-events"]) {
    throw new Error(
      "--client-lifecycle-events (CLIENT_LIFECYCLE_EVENTS) is the controller's: run `podgateway-provisioner controller` with it " +
        "beside the service (the service holds no watch and no finalizer, so it may scale to zero)",
    );
  }
  const { kube, describe } = await connect(config, fetcherFor, env);
  await requirePermissions(kube, serviceNeeds(config), (message) => log({ msg: `WARNING: ${message}` }));
  const stamp = { source: config["event-source"], extensions: parseCeOverrides(env.K_CE_OVERRIDES) };
  const sink = env.K_SINK ? httpSink(env.K_SINK) : undefined;
  const lifecycle = createLifecycle({
    kube,
    namespace: config["client-namespace"],
    stamp,
    log,
    gatewayLabelKey: config["gateway-label"],
    gatewayAnnotationKey: config["gateway-annotation"],
    sidecarContainer: config["gateway-sidecar-container"],
    readyTimeoutMs: config["client-ready-timeout-seconds"] * 1000,
    maxClientsPerGateway: config["max-clients-per-gateway"],
  });

  const app = createApp({
    provisioner: { ...provisionerOptions(config, kube), admit: lifecycle.admit },
    stamp,
    sink,
    lifecycle,
    metrics: new Metrics(),
    log,
    // Ready = this process can serve. API server trouble is answered per event (503 + Retry-After); taking
    // every replica out of routing for an API blip would only turn those answers into connection errors.
    ready: () => Promise.resolve(true),
    maxInFlight: config["max-in-flight"],
    maxBodyBytes: config["max-body-bytes"],
    auth: config["oidc-audience"]
      ? senderAuth({ kube, audience: config["oidc-audience"], allowedSenders: config["allowed-senders"] })
      : undefined,
  });
  if (!config["oidc-audience"]) {
    log({ msg: "WARNING: sender authentication is off: anyone who can reach this service can create client pods; set --oidc-audience and --allowed-senders" });
  }
  return { app, kube, describe };
}

/** What the service does with the API, by enabled feature: the start-up check asks for exactly this. */
export function serviceNeeds(config: Config): Permission[] {
  const namespace = config["client-namespace"];
  return [
    ...podPermissions(namespace, ["create", "get", "patch", "delete"], "pending and release events"),
    ...podPermissions(namespace, ["list"], "GET /clients"),
    ...(config["max-clients-per-gateway"] > 0
      ? leasePermissions(namespace, ["get", "list", "create", "update", "delete"], "--max-clients-per-gateway")
      : []),
    ...(config["oidc-audience"] ? [{ verb: "create", group: "authentication.k8s.io", resource: "tokenreviews", for: "--oidc-audience" }] : []),
  ];
}

/** The API server client, from the kubeconfig or the in-cluster service account; `describe` names it without secrets. */
export async function connect(config: Config, fetcherFor: FetcherFactory, env: Record<string, string | undefined>) {
  const timeoutMs = config["kube-timeout-ms"];
  const useInCluster = !config.kubeconfig && isInCluster(env);
  const path = kubeconfigPath(undefined, { KUBECONFIG: config.kubeconfig });
  const kube = useInCluster ? await inClusterClient(fetcherFor, { timeoutMs, env }) : await kubeconfigClient(path, fetcherFor, { timeoutMs });
  return { kube, describe: useInCluster ? "in-cluster service account" : `kubeconfig ${path} (${kube.server})` };
}

/** How client pods are made, from the configuration; the benchmark's baseline uses the very same. */
export function provisionerOptions(config: Config, kube: RestClient): ProvisionerOptions {
  return {
    kube,
    routingInitContainer: config["routing-init-container"],
    pod: {
      namespace: config["client-namespace"],
      image: config["client-image"],
      command: config["client-command"],
      gatewayLabelKey: config["gateway-label"],
      gatewayAnnotationKey: config["gateway-annotation"],
      activeDeadlineSeconds: config["client-max-lifetime-seconds"] || undefined,
    },
  };
}
