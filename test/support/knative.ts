/**
 * The real Knative Eventing broker of the local cluster (cluster/knative.sh), deploy/ applied to it as shipped,
 * and a `cloudevents listen` sink (the conformance CLI) in place of the seed's cloudevents-player.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { OutputData } from "../../src/events/schema.ts";
import { cluster, kubectlOk, repo, serviceAccountKubeconfig, waitFor } from "./cluster.ts";
import { checkData } from "./received.ts";
import { routeNamespace } from "./real-node.ts";
import { removeFinalizers, type RunningService, startController, startService } from "./service.ts";

export const SERVICE_NS = "podgateway";
export const CLIENT_NS = "podgateway-clients";
export const PROVISIONER = "podgateway-provisioner";
export const CONTROLLER = "podgateway-provisioner-controller";
export const PLAYER = "cloudevents-player";
/** A ServiceAccount the tests send to the Broker as (with OIDC on, the ingress wants a token for its audience). */
export const SENDER = "e2e-broker-sender";
/**
 * How long deploy/'s namespaces may take to go: a Knative revision pod's grace period is its Service's timeoutSeconds
 * (300 s by default), and its queue-proxy drains before its container stops (the player's pod took over 120 s once).
 */
export const NAMESPACES_GONE_MS = 330_000;

/** What `npm run cluster -- env` says about the cluster and its Knative parts. */
export interface KnativeEnv {
  KUBECONFIG: string;
  KUBECTL: string;
  PGW_KNATIVE_INGRESS_URL: string;
  PGW_KNATIVE_SINK_NETNS: string;
  PGW_KNATIVE_SINK_URL: string;
  CLOUDEVENTS_CLI: string;
}

let cached: KnativeEnv | undefined;
/** Throws (the test fails, never skips) when the cluster or its Knative parts are not there. */
export function knativeEnv(): KnativeEnv {
  if (cached) return cached;
  const result = spawnSync("bash", [join(repo, "cluster/cluster.sh"), "env"], { encoding: "utf8" });
  if (result.status !== 0) throw new Error(`\`npm run cluster -- env\` failed: ${result.stderr}`);
  const env: Record<string, string> = {};
  for (const match of result.stdout.matchAll(/^export ([A-Z_]+)=(.*)$/gm)) env[match[1]!] = match[2]!;
  for (const key of ["KUBECONFIG", "KUBECTL", "PGW_KNATIVE_INGRESS_URL", "PGW_KNATIVE_SINK_URL", "CLOUDEVENTS_CLI"]) {
    if (!env[key]) throw new Error(`\`npm run cluster -- env\` printed no ${key} (Knative disabled?):\n${result.stdout}`);
  }
  cached = env as unknown as KnativeEnv;
  return cached;
}

/** Runs kubectl against the local cluster; throws with its stderr when it fails. */
export function kubectl(...args: string[]): string {
  return kubectlOk(args);
}

/** Where applyDeploy runs the provisioner's Knative Service: on Knative Serving, or not at all (a test's process). */
export interface DeployOptions {
  /** The shipped controller Deployment runs its replicas (on the real node); otherwise it gets none. */
  shippedController?: boolean;
  /**
   * The provisioner's Knative Service (and its SinkBinding) as shipped, on the cluster's Knative Serving. Without
   * it they are left out and the Trigger is pointed at a provisioner the test runs (startProvisioner).
   */
  serving?: boolean;
  /** Client pods from deploy/'s own template (kwok's nodes) instead of the local one (the real node): for volume. */
  kwokClients?: boolean;
  /** The CloudEvents Player's Knative Service as shipped (on Serving, its Trigger delivering to it); else left out. */
  player?: boolean;
}

/**
 * Applies deploy/ as shipped (`kubectl apply -k cluster/deploy`: everything, the template ConfigMap, controller
 * and network policy included), into fresh namespaces (an earlier run's, or the demo's, are deleted first), and
 * routes the client namespace (the gateways' settings ConfigMaps, as the pod-gateway chart copies them). Unless
 * `player`, the cloudevents-player's Knative Service is left out: its Trigger delivers to a test's sink (pointTrigger).
 */
export async function applyDeploy({ shippedController = false, serving = false, kwokClients = false, player = false }: DeployOptions = {}): Promise<void> {
  removeDeploy();
  await waitFor("deploy/ namespaces from an earlier run to be gone", async () =>
    kubectl("get", "namespaces", SERVICE_NS, CLIENT_NS, "podgateway-gateways", "--ignore-not-found", "-o", "name") === "", NAMESPACES_GONE_MS);
  // The filter and dispatcher cache the OIDC tokens they mint per ServiceAccount name for an hour; an earlier
  // run's namespaces had ServiceAccounts of the same names (now deleted, so their tokens are refused): start afresh.
  for (const c of ["kn-filter", "kn-dispatcher"]) {
    cluster("stop", c);
    cluster("start", c);
  }
  // Most tests run the controller on this machine (startShippedController, which they stop and restart): the
  // shipped Deployment, which runs on the real node, gets no replicas unless `shippedController`.
  const manifests = parseAllDocuments(kubectl("kustomize", join(repo, "cluster/deploy"))).map((doc) => doc.toJS()).filter(Boolean);
  const servedByTest = (o: { apiVersion: string; kind: string; metadata: { name: string } }) =>
    (!player && o.kind === "Service" && o.metadata.name === PLAYER && o.apiVersion === "serving.knative.dev/v1") ||
    (!serving && o.metadata.name === PROVISIONER && ["serving.knative.dev/v1", "sources.knative.dev/v1"].includes(o.apiVersion));
  for (const object of manifests) {
    if (!shippedController && object.kind === "Deployment" && object.metadata.name === CONTROLLER) object.spec.replicas = 0;
    if (kwokClients && object.kind === "ConfigMap" && object.metadata.name.startsWith("podgateway-client-pod-template")) {
      object.data["client-pod-template.yaml"] = readFileSync(join(repo, "deploy/client-pod-template.yaml"), "utf8");
    }
  }
  kubectlOk(["apply", "--server-side", "--force-conflicts", "--field-manager=e2e-knative", "-f", "-"],
    JSON.stringify({ apiVersion: "v1", kind: "List", items: manifests.filter((o) => !servedByTest(o)) }));
  routeNamespace(CLIENT_NS);
}

/** Points a Trigger of deploy/ at a URL instead of its Knative Service (a process or sink of the test's). */
export function pointTrigger(trigger: string, url: string, audience?: string): void {
  kubectl("patch", "triggers.eventing.knative.dev", trigger, "-n", SERVICE_NS, "--type=merge",
    "-p", JSON.stringify({ spec: { subscriber: { ref: null, uri: url, ...(audience ? { audience } : {}) } } }));
}

/**
 * Deletes what applyDeploy created the way deploy/README.md says to uninstall: the controller Deployment, then
 * `controller --remove-finalizers` frees the client pods, then the namespaces (their contents go with them).
 */
export function removeDeploy(): void {
  // the controller first (its pods gone: on the real node they run, and a running controller adds finalizers back)
  kubectl("delete", "deployment", CONTROLLER, "-n", SERVICE_NS, "--ignore-not-found", "--cascade=foreground", "--timeout=120s");
  if (kubectl("get", "namespace", CLIENT_NS, "--ignore-not-found", "-o", "name")) {
    const freed = removeFinalizers(CLIENT_NS);
    if (freed.status !== 0) throw new Error(`controller --remove-finalizers failed: ${freed.stderr}`);
  }
  kubectl("delete", "namespace", "--wait=false", "--ignore-not-found", SERVICE_NS, CLIENT_NS, "podgateway-gateways");
}

/** Waits until a Knative object reports Ready=True. */
export async function waitReady(resource: string, name: string, timeoutMs = 60_000): Promise<void> {
  await waitFor(`${resource}/${name} Ready`, async () =>
    kubectl("get", resource, name, "-n", SERVICE_NS, "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}") === "True", timeoutMs);
}

/** One event as `cloudevents listen` records it. */
export interface SinkEvent {
  /** Extensions: names in lower case (see events()). */
  ContextAttributes: { type: string; id: string; source: string; subject?: string; Extensions?: Record<string, string> };
  Data?: string;
}

/** `cloudevents listen` in the sink network namespace, reachable at PGW_KNATIVE_SINK_URL. */
export interface Sink {
  url: string;
  /** Every event received so far (from the listener's own /history). */
  events: () => Promise<SinkEvent[]>;
  stop: () => Promise<void>;
}

/**
 * The provisioner's answer to request `id` at the sink: the scheduling.* event whose causationid is `id`. (The
 * controller's lifecycle events name the request too, and may reach the sink first.)
 */
export async function resultAtSink(sink: Sink, id: string, timeoutMs = 60_000): Promise<SinkEvent> {
  let found: SinkEvent | undefined;
  await waitFor(`the result for ${id} at the sink`, async () => {
    found = (await sink.events()).find((e) => e.ContextAttributes.Extensions?.causationid === id && e.ContextAttributes.type.includes(".scheduling."));
    return found !== undefined;
  }, timeoutMs);
  return found!;
}

export async function startSink(history = 5000): Promise<Sink> {
  const env = knativeEnv();
  const child: ChildProcess = spawn("ip", ["netns", "exec", env.PGW_KNATIVE_SINK_NETNS, env.CLOUDEVENTS_CLI,
    "listen", "-P", "8080", "--history", String(history)], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (chunk) => (stderr += chunk));
  const events = async (): Promise<SinkEvent[]> => {
    const response = await fetch(`${env.PGW_KNATIVE_SINK_URL}/history`);
    if (!response.ok) throw new Error(`sink /history answered ${response.status}`);
    const all = parseAllDocuments(await response.text()).map((doc) => doc.toJS() as SinkEvent).filter((e) => e?.ContextAttributes);
    // the CLI capitalises extension names (Causationid): back to CloudEvents' lower case
    for (const e of all) {
      const ext = e.ContextAttributes.Extensions ?? {};
      e.ContextAttributes.Extensions = Object.fromEntries(Object.entries(ext).map(([k, v]) => [k.toLowerCase(), String(v)]));
      // Every event the provisioner sends, held to its schema (test/support/received.ts).
      if (OutputData[e.ContextAttributes.type]) checkData(e.ContextAttributes.type, JSON.parse(e.Data ?? "null"));
    }
    return all;
  };
  await waitFor("the sink to listen", async () => {
    if (child.exitCode !== null) throw new Error(`cloudevents listen exited with ${child.exitCode}: ${stderr}`);
    return events().then(() => true, () => false);
  }, 15_000);
  return {
    url: env.PGW_KNATIVE_SINK_URL,
    events,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, "exit");
      process.kill(child.pid!, "SIGTERM");
      await exited;
    },
  };
}

let senderToken: string | undefined;
/**
 * A token of the SENDER ServiceAccount for the Broker's audience (its status.address.audience), what
 * `kubectl create token e2e-broker-sender --audience <that>` prints; sendToBroker uses it unless told otherwise.
 */
export async function brokerToken(): Promise<string> {
  const audience = kubectl("get", "brokers.eventing.knative.dev", "default", "-n", SERVICE_NS, "-o", "jsonpath={.status.address.audience}");
  if (!audience) throw new Error("the Broker publishes no audience: is Eventing's authentication-oidc feature on?");
  if (!kubectl("get", "serviceaccount", SENDER, "-n", SERVICE_NS, "--ignore-not-found", "-o", "name")) {
    kubectl("create", "serviceaccount", SENDER, "-n", SERVICE_NS);
  }
  senderToken = kubectl("create", "token", SENDER, "-n", SERVICE_NS, "--audience", audience, "--duration=3600s").trim();
  return senderToken;
}

/**
 * POSTs a binary-mode CloudEvent to the Broker's ingress the way curl would (ce-* headers), with the sender's
 * token (brokerToken()); `token: ""` sends none.
 */
export async function sendToBroker(
  event: { id: string; source: string; type: string; data: unknown },
  token = senderToken,
): Promise<Response> {
  const url = `${knativeEnv().PGW_KNATIVE_INGRESS_URL}/${SERVICE_NS}/default`;
  return await fetch(url, {
    method: "POST",
    headers: {
      "ce-specversion": "1.0",
      "ce-id": event.id,
      "ce-source": event.source,
      "ce-type": event.type,
      "content-type": "application/json",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify(event.data),
  });
}

/** The container env a deploy/ workload ships with (plain values; fieldRefs are left out). */
export function shippedEnv(file: string, kind: string): Record<string, string> {
  const workload = parseAllDocuments(readFileSync(join(repo, "deploy", file), "utf8")).map((d) => d.toJS()).find((o) => o?.kind === kind);
  const env = workload.spec.template.spec.containers[0].env as { name: string; value?: string }[];
  return Object.fromEntries(env.filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]));
}

/**
 * Runs the provisioner on this machine as deploy/service.yaml configures it (its env: sender authentication on,
 * for the Trigger's audience and identity), authenticated with a real token of deploy/rbac.yaml's ServiceAccount,
 * and points the Trigger at it, with the audience the shipped Trigger names.
 */
export async function startProvisioner(env: Record<string, string> = {}): Promise<RunningService> {
  const { kubeconfig, remove } = await serviceAccountKubeconfig(SERVICE_NS, PROVISIONER);
  const shipped = shippedEnv("service.yaml", "Service");
  // CLIENT_POD_TEMPLATE is the path where the Knative Service mounts the template ConfigMap; here, the file
  // that ConfigMap is generated from (deploy/kustomization.yaml).
  shipped.CLIENT_POD_TEMPLATE = join(repo, "deploy/client-pod-template.yaml");
  const service = await startService({ ...shipped, KUBECONFIG: kubeconfig, ...env }).finally(remove); // read at start-up
  try {
    pointTrigger(PROVISIONER, service.url, shipped.OIDC_AUDIENCE);
    await waitFor("the Trigger to deliver to the provisioner", async () =>
      kubectl("get", "triggers.eventing.knative.dev", PROVISIONER, "-n", SERVICE_NS, "-o", "jsonpath={.status.subscriberUri}") === service.url);
  } catch (error) {
    await service.stop();
    throw error;
  }
  return service;
}

/**
 * Waits until the broker really delivers: a Trigger turns Ready a moment before the in-memory channel's
 * dispatcher has its subscribers, and an event arriving in between is accepted (202) and dropped. A probe event
 * goes to the unfiltered cloudevents-player Trigger, i.e. the sink, until one arrives.
 */
export async function awaitDelivery(sink: Sink, token?: string): Promise<void> {
  let n = 0;
  const probe = `probe-${Date.now().toString(36)}`;
  await waitFor("the broker to deliver a probe event to the sink", async () => {
    await (await sendToBroker({ id: `${probe}-${n++}`, source: "/e2e/probe", type: "io.podgateway.e2e.probe", data: {} }, token)).body?.cancel();
    await new Promise((resolve) => setTimeout(resolve, 500));
    return (await sink.events()).some((e) => e.ContextAttributes.id.startsWith(probe));
  }, 60_000);
}

/**
 * The controller (deploy/controller.yaml's env, leader election on) as its own ServiceAccount, with what its
 * SinkBinding gives a pod: K_SINK = the Broker, and (OIDC on) the token in the Secret the SinkBinding's status
 * names, in a file where the pod would have it mounted (/oidc/token).
 */
export async function startShippedController(): Promise<RunningService> {
  const { kubeconfig, remove } = await serviceAccountKubeconfig(SERVICE_NS, CONTROLLER);
  let secret = "";
  await waitFor("the controller's SinkBinding token Secret", async () => {
    secret = kubectl("get", "sinkbindings.sources.knative.dev", CONTROLLER, "-n", SERVICE_NS, "-o", "jsonpath={.status.oidcTokenSecretName}");
    return secret !== "" && kubectl("get", "secret", secret, "-n", SERVICE_NS, "--ignore-not-found", "-o", "name") !== "";
  });
  // read per delivery: kept until the controller stops
  const oidc = mkdtempSync(join(tmpdir(), "knative-e2e-oidc-"));
  const token = Buffer.from(kubectl("get", "secret", secret, "-n", SERVICE_NS, "-o", "jsonpath={.data.token}"), "base64");
  writeFileSync(join(oidc, "token"), token, { mode: 0o600 });
  const env = { ...shippedEnv("controller.yaml", "Deployment"), POD_NAME: `${CONTROLLER}-e2e`, KUBECONFIG: kubeconfig };
  const controller = await startController({
    ...env,
    K_SINK: `${knativeEnv().PGW_KNATIVE_INGRESS_URL}/${SERVICE_NS}/default`,
    K_SINK_TOKEN_FILE: join(oidc, "token"),
  }).finally(remove);
  const stop = controller.stop;
  controller.stop = (signal) => stop(signal).finally(() => rmSync(oidc, { recursive: true, force: true }));
  return controller;
}

/** The seed's flow, ready: deploy/ applied, the sink in the cloudevents-player's place, the provisioner running. */
export interface Flow {
  sink: Sink;
  /** Replaceable (a test may restart the provisioner); stop() stops whichever runs then. */
  service: RunningService;
  controller: RunningService;
  stop: () => Promise<void>;
}

/**
 * Sets up the flow and waits until the broker delivers; `history`: how many events the sink keeps; `env`: the
 * provisioner's, over the shipped one (e.g. the real node's client pod template).
 */
export async function startFlow(history?: number, env: Record<string, string> = {}): Promise<Flow> {
  await applyDeploy();
  let sink: Sink | undefined;
  let service: RunningService | undefined;
  let controller: RunningService | undefined;
  try {
    sink = await startSink(history);
    pointTrigger(PLAYER, sink.url);
    service = await startProvisioner(env);
    controller = await startShippedController();
    await waitReady("brokers.eventing.knative.dev", "default");
    await waitReady("triggers.eventing.knative.dev", PROVISIONER);
    await waitReady("triggers.eventing.knative.dev", PLAYER);
    await brokerToken();
    await awaitDelivery(sink);
  } catch (error) {
    await controller?.stop();
    await service?.stop();
    await sink?.stop();
    removeDeploy();
    throw error;
  }
  const flow: Flow = {
    sink,
    service,
    controller,
    stop: async () => {
      await flow.service.stop();
      await controller.stop();
      await sink.stop();
      removeDeploy();
    },
  };
  return flow;
}
