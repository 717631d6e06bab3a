/**
 * The local cluster's real node (cluster/node.sh): its gateways, the echo host, the egress guard, and commands
 * run inside pods. Everything is asked of the cluster as an operator would (kubectl, iptables).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { clusterEnv, getPodOrNull, kubectlOk, kubectlRun, repo, waitFor } from "./cluster.ts";
import { CLIENT_NS, resultAtSink, sendToBroker, type Sink } from "./knative.ts";

/** What cluster.sh says about the node (throws when the cluster runs without one). */
export function nodeEnv() {
  const env = clusterEnv();
  for (const key of ["PGW_NODE_NAME", "PGW_ECHO_URL", "PGW_EGRESS_CHAIN", "PGW_VOID_IP"]) {
    if (!env[key]) throw new Error(`\`npm run cluster -- env\` printed no ${key}: is the real node on (PGW_NODE)?`);
  }
  return { name: env.PGW_NODE_NAME!, echoUrl: env.PGW_ECHO_URL!, egressChain: env.PGW_EGRESS_CHAIN!, voidIp: env.PGW_VOID_IP! };
}

/** The local overlay's client pod template: clients on the real node, with the client image built here. */
export const REAL_NODE_TEMPLATE = join(repo, "cluster/deploy/client-pod-template.yaml");

/** Runs a command in a pod's container: its exit status and output (never throws for a failing command). */
export function execIn(namespace: string, pod: string, container: string, ...command: string[]) {
  return kubectlRun(["exec", "-n", namespace, pod, "-c", container, "--", ...command]);
}

/** A container's log. */
export function logsOf(namespace: string, pod: string, container: string): string {
  return kubectlOk(["logs", "-n", namespace, pod, "-c", container]);
}

/** The running gateway pod of a gateway (the chart's Deployment in namespace "gateways"): name and address. */
export function gatewayPod(gateway: string): { name: string; ip: string } | null {
  const out = kubectlOk(["get", "pods", "-n", "gateways", "-l", `app.kubernetes.io/instance=${gateway}`, "-o",
    "jsonpath={range .items[?(@.status.phase==\"Running\")]}{.metadata.name} {.status.podIP} {.metadata.deletionTimestamp}{\"\\n\"}{end}"]);
  const live = out.split("\n").map((line) => line.split(" ")).find(([name, ip, deleting]) => name && ip && !deleting);
  return live ? { name: live[0]!, ip: live[1]! } : null;
}

/** Scales a gateway's Deployment (0: the gateway is gone; 1: back) and waits for it. */
export function scaleGateway(gateway: string, replicas: number): void {
  const deployment = `deployment/${gateway}-pod-gateway`;
  kubectlOk(["scale", "-n", "gateways", deployment, `--replicas=${replicas}`]);
  if (replicas > 0) kubectlOk(["rollout", "status", "-n", "gateways", deployment, "--timeout=120s"]);
  else kubectlOk(["wait", "-n", "gateways", "--for=delete", "pod", "-l", `app.kubernetes.io/instance=${gateway}`, "--timeout=120s"]);
}

/**
 * Makes a namespace routable on the real node: the pod-gateway chart copies each gateway's settings ConfigMap into
 * its routed namespaces (the webhook mounts it into every client); cluster/pod-gateway-chart.ts renders it.
 */
export function routeNamespace(namespace: string): void {
  const node = join(repo, "node_modules/.bin/node");
  const manifests = ["foo", "bar"].map((gateway) =>
    execFileSync(node, [join(repo, "cluster/pod-gateway-chart.ts"), "--release", gateway, "--namespace", "gateways",
      "-f", join(repo, `deploy/pod-gateway-${gateway}-values.yaml`), "-f", join(repo, "cluster/pod-gateway-local-values.yaml"),
      "--configmap-in", namespace], { encoding: "utf8" })).join("");
  kubectlOk(["apply", "--server-side", "--field-manager=e2e-real-node", "-f", "-"], manifests);
}

/** What the echo host saw of a request from inside a pod's container (curl), or why it did not arrive. */
export function askEcho(namespace: string, pod: string, container = "client", timeoutSeconds = 5, url = `${nodeEnv().echoUrl}/from/${pod}`) {
  const result = execIn(namespace, pod, container, "curl", "-sS", "--max-time", String(timeoutSeconds), url);
  if (result.status !== 0) return { ok: false as const, error: (result.stderr || result.stdout).trim() };
  return { ok: true as const, ...(JSON.parse(result.stdout) as { remote_address: string; path: string }) };
}

/** Whether the echo host logged a request for `path` (its log: one line per request, with the source address). */
export function echoLogged(path: string): string | undefined {
  const log = readFileSync(join(clusterEnv().PGW_CLUSTER_STATE_DIR!, "logs/echo-host.log"), "utf8");
  return log.split("\n").find((line) => line.includes(` ${path} from `));
}

/** Packets from pods to non-local addresses the node's egress guard has dropped so far. */
export function egressDrops(): number {
  const out = execFileSync("iptables", ["-t", "mangle", "-L", nodeEnv().egressChain, "-v", "-x", "-n"], { encoding: "utf8" });
  const drop = out.split("\n").find((line) => /\bDROP\b/.test(line));
  if (!drop) throw new Error(`no DROP rule in chain ${nodeEnv().egressChain}:\n${out}`);
  return Number(drop.trim().split(/\s+/)[0]);
}

/**
 * A pending event for `gateway` sent to the broker as curl would; the pod of the done answer at the sink, once
 * Running and Ready on the real node.
 */
export async function provisionThroughBroker(sink: Sink, gateway: string): Promise<string> {
  const id = `real-${gateway}-${randomUUID()}`;
  const response = await sendToBroker({ id, source: "/e2e/real-node", type: "io.podgateway.client.pending", data: { gateway_name: gateway } });
  assert.equal(response.status, 202, await response.text());
  const result = await resultAtSink(sink, id, 120_000);
  assert.equal(result.ContextAttributes.type, "io.podgateway.client.scheduling.done", result.Data);
  const pod = JSON.parse(result.Data!).pod_name as string;
  await waitFor(`client ${pod} Running and Ready on the real node`, async () => {
    const p = await getPodOrNull(CLIENT_NS, pod);
    return p?.status?.phase === "Running" && p.status.conditions?.some((c) => c.type === "Ready" && c.status === "True") === true;
  }, 180_000);
  assert.equal((await getPodOrNull(CLIENT_NS, pod))?.spec?.nodeName, nodeEnv().name);
  return pod;
}

/** The host pid of each running container of the pods in `namespace` (containerd's tasks), by pod and container name. */
export function containerPids(namespace: string): { pod: string; container: string; pid: number }[] {
  const env = clusterEnv();
  const tasks = execFileSync(env.CTR!, ["--address", env.CONTAINERD_ADDRESS!, "-n", "k8s.io", "task", "ls"], { encoding: "utf8" });
  const pidOf = new Map(tasks.split("\n").map((line) => line.trim().split(/\s+/) as [string, string]));
  const pods = JSON.parse(kubectlOk(["get", "pods", "-n", namespace, "-o", "json"])).items as
    { metadata: { name: string }; status: { containerStatuses?: { name: string; containerID?: string }[] } }[];
  return pods.flatMap((p) => (p.status.containerStatuses ?? []).flatMap((c) => {
    const pid = pidOf.get(String(c.containerID).replace(/^containerd:\/\//, ""));
    return pid && pid !== "0" ? [{ pod: p.metadata.name, container: c.name, pid: Number(pid) }] : [];
  }));
}

/** The host's view of a pod's first container process (containerd's task): its uid and whether / is read-only. */
export function containerProcess(namespace: string, pod: string): { uid: number; readOnlyRoot: boolean } {
  // the pod's first container (a revision pod's second is Knative's queue-proxy)
  const first = kubectlOk(["get", "pod", "-n", namespace, pod, "-o", "jsonpath={.spec.containers[0].name}"]).trim();
  const pid = containerPids(namespace).find((c) => c.pod === pod && c.container === first)?.pid;
  if (!pid) throw new Error(`no running container ${first} in ${namespace}/${pod}`);
  const uid = Number(execFileSync("awk", ["/^Uid:/ {print $2}", `/proc/${pid}/status`], { encoding: "utf8" }).trim());
  const root = execFileSync("awk", ["$5 == \"/\" {print $6}", `/proc/${pid}/mountinfo`], { encoding: "utf8" }).trim();
  return { uid, readOnlyRoot: root.split(",").includes("ro") };
}
