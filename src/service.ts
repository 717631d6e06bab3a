import type { Hono } from "hono";
import { createApp } from "./app.ts";
import { senderAuth } from "./auth/sender-auth.ts";
import { clientSettings, type Config, hasWarmPool } from "./config.ts";
import { eventOutput } from "./events/sink.ts";
import { createLifecycle } from "./lifecycle/lifecycle.ts";
import type { KubeConnection } from "./kube/connect.ts";
import type { RestClient } from "./kube/rest-client.ts";
import { leasePermissions, type Permission, podPermissions, requirePermissions } from "./kube/access.ts";
import { jsonLogger, type Logger } from "./observability/log.ts";
import { Metrics } from "./observability/metrics.ts";
import { checkOnServer, loadPodTemplate } from "./provision/pod-template.ts";
import type { ProvisionerOptions } from "./provision/provisioner.ts";
import { isClaimable, templateHash } from "./pool/member.ts";
import { PoolMembers } from "./pool/members.ts";
import type { WarmPool } from "./pool/serve.ts";

/** A ready-to-serve service: the app, and how it reaches Kubernetes. */
export interface Service {
  app: Hono;
  /** Where the API server is and how we authenticate, for the start-up log line (no secrets). */
  describe: string;
  /**
   * Background work to run until shutdown (the controller's leader election and lifecycle watch); entrypoints
   * start it once listening and abort the signal on SIGTERM.
   */
  background?: (signal: AbortSignal) => Promise<void>;
}

/**
 * Wires the app from its configuration. Runtime-neutral: entrypoints connect to Kubernetes (src/kube/connect.ts)
 * and read the `--client-pod-template` file (`clientPodTemplate`, its text) and K_SINK's OIDC token (`sinkToken`).
 * @throws Error when K_CE_OVERRIDES, the options or the client pod template are unusable, before anything listens;
 *   when the API server could not be asked about the template, the transient error is its `cause`.
 */
export async function createService(
  config: Config,
  { kube, describe }: KubeConnection,
  env: Record<string, string | undefined>,
  log: Logger = jsonLogger,
  clientPodTemplate?: string,
  sinkToken?: () => Promise<string | undefined>,
): Promise<Service> {
  if (config["client-lifecycle-events"]) {
    throw new Error(
      "--client-lifecycle-events (CLIENT_LIFECYCLE_EVENTS) is the controller's: run `podgateway-provisioner controller` with it " +
        "beside the service (the service holds no watch and no finalizer, so it may scale to zero)",
    );
  }
  const { pod, rules } = clientSettings(config);
  // What the template says is checked first: a wrong template is wrong whatever the cluster.
  const template = clientPodTemplate === undefined ? undefined : await loadPodTemplate(config["client-pod-template"], clientPodTemplate, pod);
  await requirePermissions(kube, serviceNeeds(config), (message) => log({ msg: `WARNING: ${message}` }));

  const provisioner = provisionerOptions(config, kube);
  if (template) {
    provisioner.pod.template = template;
    // With --gateways, the first one's webhook mutates the imagined pod too: a clash with it shows here.
    await checkOnServer(kube, provisioner.pod, config.gateways[0] ?? "podgateway-template-check", config["client-pod-template"]);
    log({ msg: "client pod template accepted by the API server (dry run)", file: config["client-pod-template"] });
  }

  const { stamp, sink } = eventOutput(config["event-source"], env, sinkToken);
  const lifecycle = createLifecycle({
    kube,
    namespace: pod.namespace,
    stamp,
    log,
    gatewayLabelKey: pod.gatewayLabelKey,
    gatewayAnnotationKey: pod.gatewayAnnotationKey,
    ...rules,
    maxClientsPerGateway: config["max-clients-per-gateway"],
  });

  const metrics = new Metrics();
  const pool = warmPool(config, kube, provisioner, metrics, log);
  const app = createApp({
    provisioner: { ...provisioner, admit: lifecycle.admit },
    stamp,
    sink,
    lifecycle,
    pool: pool?.pool,
    metrics,
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
  return { app, describe, background: pool?.background };
}

/**
 * The service's side of `--warm-pool`: the watch of Ready members (the background work) and the claim. Members of
 * another template hash than this service's are never handed out: during a template rollout, that is a miss.
 */
function warmPool(config: Config, kube: KubeConnection["kube"], provisioner: ProvisionerOptions, metrics: Metrics, log: Logger) {
  if (!hasWarmPool(config)) return undefined;
  const hash = templateHash(provisioner.pod);
  const rules = { sidecarContainer: config["gateway-sidecar-container"], routingInitContainer: config["routing-init-container"] };
  const claimable = (pod: Parameters<typeof isClaimable>[0]) => isClaimable(pod, hash, rules);
  const { namespace, gatewayLabelKey, gatewayAnnotationKey } = provisioner.pod;
  const members = new PoolMembers({ kube, namespace, hash, claimable, gatewayLabelKey, gatewayAnnotationKey, log });
  const pool: WarmPool = { sizes: config["warm-pool"], members, claim: { kube, namespace, claimable }, metrics };
  return { pool, background: (signal: AbortSignal) => members.run(signal) };
}

/** What the service does with the API, by enabled feature: the start-up check asks for exactly this. */
export function serviceNeeds(config: Config): Permission[] {
  const namespace = config["client-namespace"];
  return [
    ...podPermissions(namespace, ["create", "get", "patch", "delete"], "pending and release events"),
    ...podPermissions(namespace, ["list"], "GET /clients"),
    ...podPermissions(namespace, ["watch"], "GET /clients/watch (the clients page)"),
    ...(hasWarmPool(config) ? leasePermissions(namespace, ["get", "create", "update"], "--warm-pool (claims)") : []),
    ...(config["max-clients-per-gateway"] > 0
      ? leasePermissions(namespace, ["get", "list", "create", "update", "delete"], "--max-clients-per-gateway")
      : []),
    ...(config["oidc-audience"] ? [{ verb: "create", group: "authentication.k8s.io", resource: "tokenreviews", for: "--oidc-audience" }] : []),
  ];
}

/** How client pods are made, from the configuration; the benchmark's baseline uses the very same. */
export function provisionerOptions(config: Config, kube: RestClient): ProvisionerOptions {
  return {
    kube,
    routingInitContainer: config["routing-init-container"],
    gateways: config.gateways,
    pod: clientSettings(config).pod,
  };
}
