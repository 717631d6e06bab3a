/**
 * Controller mode (`podgateway-provisioner controller`): the client lifecycle tracker — ready/failed/deleted
 * events, ReadyTimeout, the finalizer and the record annotation —, the sweep of abandoned gated pods and, with
 * `--warm-pool`, the pool keeper (src/pool/keeper.ts), run by the leader of a coordination.k8s.io Lease only. Several replicas may run; one works, the others wait.
 * A new leader resumes from what the pods record (their annotation and finalizer), not from memory.
 */
import { Hono } from "hono";
import { clientSettings, type Config, hasWarmPool } from "../config.ts";
import { eventOutput } from "../events/sink.ts";
import { leasePermissions, type Permission, podPermissions, requirePermissions } from "../kube/access.ts";
import { fenced } from "../kube/fence.ts";
import { listPods } from "../kube/pods.ts";
import type { KubeConnection } from "../kube/connect.ts";
import { LIFECYCLE_FINALIZER } from "../lifecycle/client-state.ts";
import { removeFinalizer } from "../lifecycle/records.ts";
import { LifecycleTracker } from "../lifecycle/tracker.ts";
import type { Logger } from "../observability/log.ts";
import { Metrics } from "../observability/metrics.ts";
import { claimSlot } from "../lifecycle/capacity.ts";
import { LABEL_MANAGED_BY, MANAGED_BY } from "../provision/client-pod.ts";
import { loadPodTemplate } from "../provision/pod-template.ts";
import type { ProvisionerOptions } from "../provision/provisioner.ts";
import { PoolKeeper } from "../pool/keeper.ts";
import { CLIENTS_NOT_POOL, templateHash } from "../pool/member.ts";
import { provisionerOptions } from "../service.ts";
import type { Service } from "../service.ts";
import { runLeaderElection } from "./leader.ts";

/** The Lease the controller replicas compete for, in the client namespace (where their Role is). */
export const LEADER_LEASE = "podgateway-provisioner-controller";

const CLIENTS = `${LABEL_MANAGED_BY}=${MANAGED_BY}`;

/**
 * Wires the controller: an HTTP app for probes and `/metrics`, and the leader-elected background work. With
 * `--warm-pool` it makes members from the same `--client-pod-template` as the service (`clientPodTemplate`, its text).
 * @throws Error when the configuration cannot work (lifecycle events without K_SINK), before anything listens.
 */
export async function createController(
  config: Config,
  { kube, describe }: KubeConnection,
  env: Record<string, string | undefined>,
  log: Logger,
  sinkToken?: () => Promise<string | undefined>,
  clientPodTemplate?: string,
): Promise<Service> {
  // Parsed once, at start-up, like the service's: a bad K_CE_OVERRIDES stops the process before it listens,
  // not each leadership term.
  const { stamp, sink } = eventOutput(config["event-source"], env, sinkToken);
  if (config["client-lifecycle-events"] && !sink) {
    throw new Error("--client-lifecycle-events (CLIENT_LIFECYCLE_EVENTS) needs K_SINK: lifecycle events have nowhere else to go");
  }
  await requirePermissions(kube, controllerNeeds(config), (message) => log({ msg: `WARNING: ${message}` }));
  const namespace = config["client-namespace"];
  const { pod, rules } = clientSettings(config);
  const identity = `${env.POD_NAME || env.HOSTNAME || "controller"}-${crypto.randomUUID().slice(0, 8)}`;
  let leading = false;
  const metrics = new Metrics();
  const pooled = hasWarmPool(config);
  const provisioner: ProvisionerOptions = provisionerOptions(config, kube);
  if (pooled && clientPodTemplate !== undefined) {
    provisioner.pod.template = await loadPodTemplate(config["client-pod-template"], clientPodTemplate, provisioner.pod);
  }
  if (pooled && config["max-clients-per-gateway"] > 0) {
    // Members hold capacity slots like clients: a gateway's maximum counts them.
    const capacity = { kube, namespace, maxPerGateway: config["max-clients-per-gateway"], gatewayLabelKey: pod.gatewayLabelKey };
    provisioner.admit = async (member, request, signal) => {
      const claim = await claimSlot(capacity, request.gatewayName, member, signal);
      return claim.ok ? undefined : { reason: "GatewayAtCapacity", message: claim.message };
    };
  }

  const app = new Hono();
  app.get("/healthz", (c) => c.text("ok"));
  // A standby is as ready as the leader: it serves its probes and is ready to take over.
  app.get("/readyz", (c) => c.text("ok"));
  app.get("/leader", (c) => c.json({ identity, leading }));
  app.get("/metrics", (c) => c.text(metrics.render(), 200, { "content-type": "text/plain; version=0.0.4" }));

  const background = (signal: AbortSignal) =>
    runLeaderElection(
      {
        kube,
        namespace,
        name: LEADER_LEASE,
        identity,
        log,
        leaseDurationMs: config["leader-lease-duration-seconds"] * 1000,
        renewDeadlineMs: config["leader-renew-deadline-seconds"] * 1000,
        retryPeriodMs: config["leader-retry-period-seconds"] * 1000,
      },
      async (term) => {
        leading = true;
        try {
          // A fresh tracker per term: it lists the pods and resumes from their records.
          const tracker = new LifecycleTracker({
            kube,
            namespace,
            // Unclaimed pool members are not clients yet: no lifecycle events, no finalizer, no sweep.
            labelSelector: CLIENTS_NOT_POOL,
            sink: config["client-lifecycle-events"] ? sink : undefined,
            stamp,
            log,
            gatewayLabelKey: pod.gatewayLabelKey,
            gatewayAnnotationKey: pod.gatewayAnnotationKey,
            ...rules,
            gatedPodTimeoutMs: config["gated-pod-timeout-seconds"] * 1000,
          });
          // The term fences the tracker: once it is over (lost, not renewed in time, or the process was paused
          // past it), no API call, patch, delete or K_SINK delivery of this tracker starts or goes on.
          const keeper = pooled
            ? new PoolKeeper({
              kube: fenced(kube, term),
              provisioner,
              sizes: config["warm-pool"],
              hash: templateHash(provisioner.pod),
              rules,
              log,
              metrics,
            })
            : undefined;
          await Promise.all([tracker.run(term), keeper?.run(term.signal)]);
          await tracker.idle();
        } finally {
          leading = false;
        }
      },
      signal,
    );
  return { app, describe: `${describe}, controller ${identity}`, background };
}

/** What the controller does with the API, by enabled feature: the start-up check asks for exactly this. */
export function controllerNeeds(config: Config): Permission[] {
  const namespace = config["client-namespace"];
  return [
    ...leasePermissions(namespace, ["get", "create", "update"], "leader election"),
    ...podPermissions(namespace, ["list", "watch", "delete"], "the sweep of abandoned gated pods"),
    ...(hasWarmPool(config) ? podPermissions(namespace, ["create", "get", "patch"], "--warm-pool (members)") : []),
    ...(hasWarmPool(config) && config["max-clients-per-gateway"] > 0
      ? leasePermissions(namespace, ["list", "delete"], "--warm-pool with --max-clients-per-gateway (members' capacity slots)")
      : []),
    ...(config["client-lifecycle-events"] ? podPermissions(namespace, ["get", "patch"], "--client-lifecycle-events (finalizer, records)") : []),
  ];
}

/**
 * `controller --remove-finalizers`: the uninstall step. Takes our finalizer off every client pod, so that
 * deleting them (or their namespace) completes once no controller runs any more. Stop the controller first:
 * a running leader would add the finalizer again.
 * @returns how many pods were freed.
 */
export async function removeAllFinalizers(config: Config, { kube }: KubeConnection): Promise<number> {
  await requirePermissions(kube, podPermissions(config["client-namespace"], ["list", "get", "patch"], "--remove-finalizers"), () => {});
  const held = (await listPods(kube, config["client-namespace"], { labelSelector: CLIENTS })).items
    .filter((pod) => pod.metadata?.finalizers?.includes(LIFECYCLE_FINALIZER));
  // Sixteen at a time: thousands of pods one by one would make an uninstall take minutes.
  let next = 0;
  const worker = async () => {
    while (next < held.length) await removeFinalizer(kube, held[next++]!);
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  return held.length;
}
