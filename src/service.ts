import type { Hono } from "hono";
import { createApp } from "./app.ts";
import { senderAuth } from "./auth/sender-auth.ts";
import type { Config } from "./config.ts";
import { parseCeOverrides } from "./events/results.ts";
import { httpSink } from "./events/sink.ts";
import { inClusterClient, isInCluster } from "./kube/in-cluster.ts";
import { kubeconfigClient, kubeconfigPath } from "./kube/kubeconfig.ts";
import type { HttpRestClient } from "./kube/http-client.ts";
import type { FetcherFactory, RestClient } from "./kube/rest-client.ts";
import { jsonLogger, type Logger } from "./observability/log.ts";
import { Metrics } from "./observability/metrics.ts";

/** A ready-to-serve service: the app, and how it reaches Kubernetes. */
export interface Service {
  app: Hono;
  kube: HttpRestClient;
  /** Where the API server is and how we authenticate, for the start-up log line (no secrets). */
  describe: string;
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
  const timeoutMs = config["kube-timeout-ms"];
  const useInCluster = !config.kubeconfig && isInCluster(env);
  const path = kubeconfigPath(undefined, { KUBECONFIG: config.kubeconfig });
  const kube = useInCluster ? await inClusterClient(fetcherFor, { timeoutMs, env }) : await kubeconfigClient(path, fetcherFor, { timeoutMs });

  const app = createApp({
    provisioner: {
      kube,
      routingInitContainer: config["routing-init-container"],
      pod: {
        namespace: config["client-namespace"],
        image: config["client-image"],
        command: config["client-command"],
        gatewayLabelKey: config["gateway-label"],
        gatewayAnnotationKey: config["gateway-annotation"],
      },
    },
    stamp: { source: config["event-source"], extensions: parseCeOverrides(env.K_CE_OVERRIDES) },
    sink: env.K_SINK ? httpSink(env.K_SINK) : undefined,
    metrics: new Metrics(),
    log,
    ready: readiness(kube),
    maxInFlight: config["max-in-flight"],
    maxBodyBytes: config["max-body-bytes"],
    auth: config["oidc-audience"]
      ? senderAuth({ kube, audience: config["oidc-audience"], allowedSenders: config["allowed-senders"] })
      : undefined,
  });
  if (!config["oidc-audience"]) {
    log({ msg: "WARNING: sender authentication is off: anyone who can reach this service can create client pods; set --oidc-audience and --allowed-senders" });
  }
  return { app, kube, describe: useInCluster ? "in-cluster service account" : `kubeconfig ${path} (${kube.server})` };
}

/** `/readyz` asks the API server's own `/readyz`, at most once a second however often probes come. */
function readiness(kube: RestClient): () => Promise<boolean> {
  let checkedAt = 0;
  let last: Promise<boolean> = Promise.resolve(false);
  return () => {
    if (Date.now() - checkedAt > 1_000) {
      checkedAt = Date.now();
      last = kube.performRequest({ method: "GET", path: "/readyz", expect: "text" }).then(() => true, () => false);
    }
    return last;
  };
}
