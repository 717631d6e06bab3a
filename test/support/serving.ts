/**
 * The provisioner's Knative Service on the local cluster's real Knative Serving (cluster/serving.sh): deploy/ applied
 * with it, the sink on the cloudevents-player's Trigger, and what tests and benches of scale to zero look at.
 */
import type { Pod } from "kubernetes-types/core/v1";
import { listPods, waitFor } from "./cluster.ts";
import {
  applyDeploy, awaitDelivery, brokerToken, CONTROLLER, type DeployOptions, kubectl, PLAYER, pointTrigger, PROVISIONER, removeDeploy,
  SERVICE_NS, sendToBroker, type Sink, type SinkEvent, startSink, waitReady,
} from "./knative.ts";

const REVISION_PODS = `serving.knative.dev/service=${PROVISIONER}`;
/** config-autoscaler's idle window, shortened (Serving's minimums are 6 s and > 0): zero about 15 s after the last event. */
const SHORT_IDLE = { "stable-window": "6s", "scale-to-zero-grace-period": "5s" };

/** The revision's pods, terminating ones left out. */
export async function revisionPods(): Promise<Pod[]> {
  return (await listPods(SERVICE_NS, REVISION_PODS)).filter((p) => !p.metadata?.deletionTimestamp);
}

/** Until the revision has no pod at all (terminating ones gone too). */
export function waitForZero(): Promise<void> {
  return waitFor("the revision to scale to zero", async () => (await listPods(SERVICE_NS, REVISION_PODS)).length === 0, 180_000);
}

/** Until Knative Service `name` is Ready on its latest revision (its template as last changed, e.g. by a SinkBinding). */
export function waitServiceReady(name: string, timeoutMs = 300_000): Promise<void> {
  return waitFor(`the Knative Service ${name} Ready on its latest revision`, async () => {
    const { metadata, status } = JSON.parse(kubectl("get", "services.serving.knative.dev", name, "-n", SERVICE_NS, "-o", "json"));
    return status?.observedGeneration === metadata.generation && status.latestReadyRevisionName === status.latestCreatedRevisionName &&
      status.conditions?.some((c: { type: string; status: string }) => c.type === "Ready" && c.status === "True");
  }, timeoutMs);
}

export interface ServingFlow {
  sink: Sink;
  stop: () => Promise<void>;
}

/**
 * deploy/ applied with the provisioner on Serving (`options` as applyDeploy's), the sink on the player's Trigger, the
 * Knative Service Ready and the broker delivering; `shortIdle`: config-autoscaler's idle window shortened until stop().
 */
export async function startServingFlow(options: Omit<DeployOptions, "serving"> & { shortIdle?: boolean; history?: number } = {}): Promise<ServingFlow> {
  const idle = (data: Record<string, string | null>) =>
    kubectl("patch", "configmap", "config-autoscaler", "-n", "knative-serving", "--type=merge", "-p", JSON.stringify({ data }));
  await applyDeploy({ ...options, serving: true });
  if (options.shortIdle) idle(SHORT_IDLE);
  let sink: Sink | undefined;
  const stop = async () => {
    if (options.shortIdle) idle(Object.fromEntries(Object.keys(SHORT_IDLE).map((k) => [k, null])));
    await sink?.stop();
    removeDeploy();
  };
  try {
    sink = await startSink(options.history);
    pointTrigger(PLAYER, sink.url);
    // The SinkBinding changes the Knative Service's template (K_SINK, the OIDC token volume): a new revision. Ready
    // once that one is.
    await waitReady("sinkbindings.sources.knative.dev", PROVISIONER, 120_000);
    await waitServiceReady(PROVISIONER);
    await waitReady("triggers.eventing.knative.dev", PROVISIONER);
    if (options.shippedController) {
      // its SinkBinding changes the Deployment's template (K_SINK, the OIDC token volume): a second rollout. Waited
      // for before the delivery probe: kubectl blocks this process, and a connection to the broker left idle
      // meanwhile is closed by the ingress under a blocked client's feet.
      await waitReady("sinkbindings.sources.knative.dev", CONTROLLER, 120_000);
      kubectl("rollout", "status", "-n", SERVICE_NS, `deployment/${CONTROLLER}`, "--timeout=180s");
    }
    await brokerToken();
    await awaitDelivery(sink);
  } catch (error) {
    await stop();
    throw error;
  }
  return { sink, stop };
}

/** Sends a pending event for gateway foo per id, `parallel` at a time; every one must be accepted (202). */
export async function sendPending(ids: string[], source: string, parallel = 32): Promise<void> {
  const queue = [...ids];
  await Promise.all(Array.from({ length: Math.min(parallel, ids.length) }, async () => {
    for (let id = queue.shift(); id; id = queue.shift()) {
      const response = await sendToBroker({ id, source, type: "io.podgateway.client.pending", data: { gateway_name: "foo" } });
      if (response.status !== 202) throw new Error(`the broker answered ${id} with ${response.status}: ${await response.text()}`);
    }
  }));
}

/** Waits for a scheduling.done per id at the sink; returns the pod names, in the order of `ids`. */
export async function donePods(sink: Sink, ids: string[], timeoutMs = 300_000): Promise<string[]> {
  const wanted = new Set(ids);
  let results = new Map<string, SinkEvent>();
  await waitFor(`scheduling.done for all ${ids.length} events`, async () => {
    results = new Map((await sink.events())
      .filter((e) => e.ContextAttributes.type === "io.podgateway.client.scheduling.done" && wanted.has(e.ContextAttributes.Extensions?.causationid ?? ""))
      .map((e) => [e.ContextAttributes.Extensions!.causationid!, e]));
    return results.size === wanted.size;
  }, timeoutMs);
  return ids.map((id) => JSON.parse(results.get(id)!.Data!).pod_name as string);
}
