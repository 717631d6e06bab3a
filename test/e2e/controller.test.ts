/**
 * Controller mode on the local cluster: two replicas elect one leader on a Lease; only it delivers lifecycle
 * events; `kill -9` of the leader hands over within lease duration + retry period and nothing is delivered twice;
 * pods abandoned behind the routing gate are swept; `controller --remove-finalizers` frees every client pod.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { CloudEvent, HTTP } from "cloudevents";
import { adminClient, getPodOrNull, listPods, routedNamespace, waitFor } from "../support/cluster.ts";
import { type EventReceiver, startReceiver } from "../support/event-receiver.ts";
import { replyEvent } from "../support/received.ts";
import { removeFinalizers, type RunningService, startController, startService } from "../support/service.ts";

const LEASE_S = 4;
const RETRY_S = 1;

async function provision(url: string, id: string): Promise<string> {
  const message = HTTP.binary(new CloudEvent({ id, source: "/e2e/controller", type: "io.podgateway.client.pending", data: { gateway_name: "foo" } }));
  const response = await fetch(url, { method: "POST", headers: message.headers as Record<string, string>, body: message.body as string });
  const body = await response.text();
  const event = replyEvent(Object.fromEntries(response.headers), body);
  assert.equal(event?.type, "io.podgateway.client.scheduling.done", body);
  return event.data!.pod_name!;
}

const leading = async (controller: RunningService) => (await (await fetch(`${controller.url}/leader`)).json()).leading as boolean;

describe("controller: leader election, hand-over, sweep, uninstall", () => {
  let namespace: Awaited<ReturnType<typeof routedNamespace>>;
  let sink: EventReceiver;
  let service: RunningService;
  let controllers: RunningService[] = [];
  const env = () => ({
    CLIENT_NAMESPACE: namespace.name,
    K_SINK: sink.url,
    CLIENT_LIFECYCLE_EVENTS: "true",
    GATED_POD_TIMEOUT_SECONDS: "3",
    LEADER_LEASE_DURATION_SECONDS: String(LEASE_S),
    LEADER_RENEW_DEADLINE_SECONDS: "3",
    LEADER_RETRY_PERIOD_SECONDS: String(RETRY_S),
  });
  const eventsOf = (pod: string) => sink.events.filter((event) => event.subject === pod && /\.(ready|failed|deleted)$/.test(event.type));

  before(async () => {
    namespace = await routedNamespace("e2e-controller");
    sink = await startReceiver();
    service = await startService({ CLIENT_NAMESPACE: namespace.name });
    controllers = [await startController(env()), await startController(env())];
  });
  after(async () => {
    for (const controller of controllers) await controller.stop("SIGKILL").catch(() => {});
    await service?.stop();
    await sink?.close();
    if (namespace) removeFinalizers(namespace.name);
    await namespace?.remove();
  });

  test("one leader delivers; kill -9 of it hands over within lease + retry; each transition once", async () => {
    await waitFor("a leader", async () => (await Promise.all(controllers.map(leading))).some(Boolean), 15_000);
    assert.deepEqual((await Promise.all(controllers.map(leading))).filter(Boolean).length, 1, "exactly one leader");
    const pod = await provision(service.url, "ctl-1");
    await waitFor("ready", async () => eventsOf(pod).length === 1);

    const [leader, standby] = (await leading(controllers[0]!)) ? [controllers[0]!, controllers[1]!] : [controllers[1]!, controllers[0]!];
    await new Promise((resolve) => setTimeout(resolve, 1_000)); // the record annotation lands
    const killed = Date.now();
    leader.process.kill("SIGKILL");
    await waitFor("the standby to lead", () => leading(standby), 30_000);
    const takeover = Date.now() - killed;
    assert.ok(takeover <= (LEASE_S + 2 * RETRY_S) * 1000 + 1_500, `took over after ${takeover} ms`);

    const kube = await adminClient();
    await kube.performRequest({ method: "DELETE", path: `/api/v1/namespaces/${namespace.name}/pods/${pod}`, body: { gracePeriodSeconds: 0 } });
    await waitFor("deleted, and the pod gone", async () => eventsOf(pod).some((event) => event.type.endsWith(".deleted")) && (await getPodOrNull(namespace.name, pod)) === null);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    assert.deepEqual(eventsOf(pod).map((event) => event.type.split(".").pop()), ["ready", "deleted"]);
    const ids = eventsOf(pod).map((event) => event.id);
    assert.equal(new Set(ids).size, ids.length, "no id twice");
  });

  test("a pod left behind the routing gate longer than --gated-pod-timeout-seconds is swept", async () => {
    const kube = await adminClient();
    const name = "pgw-client-abandoned";
    await kube.performRequest({
      method: "POST",
      path: `/api/v1/namespaces/${namespace.name}/pods`,
      body: {
        metadata: { name, labels: { "app.kubernetes.io/managed-by": "podgateway-provisioner", setGateway: "foo" } },
        spec: { schedulingGates: [{ name: "podgateway.io/routing-verified" }], containers: [{ name: "client", image: "x" }] },
      },
    });
    await waitFor("the abandoned pod to be deleted", async () => (await getPodOrNull(namespace.name, name)) === null, 20_000);
    assert.deepEqual(eventsOf(name), [], "a request that never became a client has no lifecycle events");
  });

  test("controller --remove-finalizers (controllers stopped) frees every client pod for an uninstall", async () => {
    const pod = await provision(service.url, "ctl-uninstall");
    await waitFor("the finalizer", async () => (await getPodOrNull(namespace.name, pod))?.metadata?.finalizers?.includes("podgateway.io/lifecycle") ?? false);
    for (const controller of controllers) await controller.stop();
    const run = removeFinalizers(namespace.name);
    assert.equal(run.status, 0, run.stderr + run.stdout);
    assert.match(run.stdout, /"msg":"finalizers removed","pods":1/);
    assert.deepEqual((await listPods(namespace.name)).flatMap((item) => item.metadata?.finalizers ?? []), []);
  });
});
