/**
 * The client lifecycle on the local cluster (kwok moves pods through their phases): ready, failed and deleted
 * events from the controller at a K_SINK receiver in this process, each once, across a restart of the
 * controller; deletions complete while the service is stopped; release events; the /clients status endpoint;
 * the per-gateway capacity under 50 concurrent pending events.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { CloudEvent, type CloudEventV1, HTTP } from "cloudevents";
import type { Pod } from "kubernetes-types/core/v1";
import { adminClient, getPodOrNull, listPods, routedNamespace, waitFor } from "../support/cluster.ts";
import { type EventReceiver, startReceiver } from "../support/event-receiver.ts";
import { replyEvent } from "../support/received.ts";
import { removeFinalizers, type RunningService, startController, startService } from "../support/service.ts";

const T = "io.podgateway.client.";
type Reply = { status: number; event?: CloudEventV1<Record<string, string>>; body: string };

/** Sends one event the way Knative delivers: retrying 429/503 with backoff (bounded). */
async function send(url: string, type: string, id: string, data: unknown, source = "/e2e/lifecycle"): Promise<Reply> {
  const message = HTTP.binary(new CloudEvent({ id, source, type: T + type, data }));
  for (let attempt = 0; ; attempt++) {
    const response = await fetch(url, { method: "POST", headers: message.headers as Record<string, string>, body: message.body as string });
    const body = await response.text();
    if ((response.status === 503 || response.status === 429) && attempt < 8) {
      await new Promise((resolve) => setTimeout(resolve, 200 * 2 ** Math.min(attempt, 4)));
      continue;
    }
    const headers = Object.fromEntries(response.headers);
    return { status: response.status, event: replyEvent(headers, body), body };
  }
}

/** The client pod of a pending event, provisioned (done), or a failed test. */
async function provision(url: string, id: string, gateway = "foo"): Promise<string> {
  const reply = await send(url, "pending", id, { gateway_name: gateway });
  assert.equal(reply.event?.type, `${T}scheduling.done`, reply.body);
  return reply.event!.data!.pod_name!;
}

const eventsOf = (sink: EventReceiver, pod: string) => sink.events.filter((event) => event.subject === pod && event.type.startsWith(T) && !event.type.includes("scheduling"));
const kinds = (sink: EventReceiver, pod: string) => eventsOf(sink, pod).map((event) => event.type.slice(T.length));
/** Waits for a lifecycle event of a pod; on time-out says what the pod and the service looked like. */
async function waitForEvent(sink: EventReceiver, pod: string, kind: string, timeoutMs = 30_000): Promise<void> {
  try {
    await waitFor(`${kind} of ${pod}`, async () => kinds(sink, pod).includes(kind), timeoutMs);
  } catch (error) {
    const found = (await listPods(currentNamespace)).find((item) => item.metadata?.name === pod);
    throw new Error(`${(error as Error).message}; events so far: ${kinds(sink, pod)}; pod: ${JSON.stringify(found?.status)?.slice(0, 1500)}; ` +
      `controller logs: ${currentController?.output().split("\n").slice(-15).join("\n")}`);
  }
}
let currentNamespace = "";
let currentController: RunningService | undefined;

/** Makes a pod fail as the kubelet would: kwok is told to leave its status alone, then the status says Failed. */
async function failPod(namespace: string, name: string, reason: string, message: string): Promise<void> {
  const kube = await adminClient();
  const path = `/api/v1/namespaces/${namespace}/pods/${name}`;
  await kube.performRequest({ method: "PATCH", path, contentType: "application/merge-patch+json", body: { metadata: { annotations: { "kwok.x-k8s.io/status": "custom" } } } });
  await kube.performRequest({ method: "PATCH", path: `${path}/status`, contentType: "application/merge-patch+json", body: { status: { phase: "Failed", reason, message } } });
}

async function deletePodAsAdmin(namespace: string, name: string): Promise<void> {
  const kube = await adminClient();
  await kube.performRequest({ method: "DELETE", path: `/api/v1/namespaces/${namespace}/pods/${name}`, body: { gracePeriodSeconds: 0 } });
}

const CAPACITY = 5;

describe("client lifecycle on the local cluster", () => {
  let service: RunningService;
  let controller: RunningService;
  let sink: EventReceiver;
  let namespace: Awaited<ReturnType<typeof routedNamespace>>;
  const env = () => ({
    CLIENT_NAMESPACE: namespace.name,
    K_SINK: sink.url,
    MAX_CLIENTS_PER_GATEWAY: String(CAPACITY),
    CLIENT_MAX_LIFETIME_SECONDS: "3600",
  });
  const controllerEnv = () => ({ ...env(), CLIENT_LIFECYCLE_EVENTS: "true" });

  before(async () => {
    namespace = await routedNamespace("e2e-lifecycle");
    sink = await startReceiver();
    service = await startService(env());
    controller = await startController(controllerEnv());
    currentNamespace = namespace.name;
    currentController = controller;
  });
  after(async () => {
    // Our finalizer holds deleted pods until the controller reports them: delete them while it runs.
    const pods = namespace ? await listPods(namespace.name).catch(() => [] as Pod[]) : [];
    await Promise.all(pods.map((pod) => deletePodAsAdmin(namespace.name, pod.metadata!.name!).catch(() => {})));
    await waitFor("every client pod to be gone", async () => (await listPods(namespace.name)).length === 0, 30_000)
      .catch(() => removeFinalizers(namespace.name));
    await controller?.stop();
    await service?.stop();
    await sink?.close();
    await namespace?.remove();
  });

  test("ready: once a pod runs and is Ready with its sidecar; correlated to the pending event; status says ready", async () => {
    const pod = await provision(service.url, "lc-ready-1");
    await waitForEvent(sink, pod, "ready");
    const [ready] = eventsOf(sink, pod);
    assert.equal(ready!.causationid, "lc-ready-1");
    assert.equal(ready!.causationsource, "/e2e/lifecycle");
    assert.equal(ready!.data?.gateway_name, "foo");
    assert.equal(ready!.data?.namespace, namespace.name);

    const stored = (await getPodOrNull(namespace.name, pod))!;
    assert.ok(stored.status?.containerStatuses?.some((status) => status.name === "gateway-sidecar" && status.state?.running));
    assert.ok(stored.metadata?.finalizers?.includes("podgateway.io/lifecycle"));
    await waitFor("the record annotation", async () => (await getPodOrNull(namespace.name, pod))?.metadata?.annotations?.["podgateway.io/lifecycle-emitted"] === "ready");
    assert.equal(stored.spec?.activeDeadlineSeconds, 3600, "the maximum lifetime");

    const status = await (await fetch(`${service.url}/clients/${pod}`)).json();
    assert.equal(status.state, "ready");
    assert.deepEqual(status.request, { source: "/e2e/lifecycle", id: "lc-ready-1" });
    const list = await (await fetch(`${service.url}/clients?gateway=foo`)).json();
    assert.ok(list.clients.some((client: { pod_name: string; state: string }) => client.pod_name === pod && client.state === "ready"));
    assert.equal((await fetch(`${service.url}/clients/pgw-client-nonexistent`)).status, 404);
  });

  test("failed: a pod whose status turns Failed (evicted) yields failed with the reason; deletion yields deleted", async () => {
    const pod = await provision(service.url, "lc-fail-1");
    await waitForEvent(sink, pod, "ready");
    await failPod(namespace.name, pod, "Evicted", "The node was low on resource: memory.");
    await waitForEvent(sink, pod, "failed");
    const failed = eventsOf(sink, pod).find((event) => event.type === `${T}failed`)!;
    assert.equal(failed.data?.reason, "Evicted");
    assert.equal(failed.causationid, "lc-fail-1");
    assert.equal((await (await fetch(`${service.url}/clients/${pod}`)).json()).state, "failed");

    await deletePodAsAdmin(namespace.name, pod);
    await waitForEvent(sink, pod, "deleted");
    await waitFor("the pod to be gone once deleted was delivered", async () => (await getPodOrNull(namespace.name, pod)) === null);
    assert.deepEqual(kinds(sink, pod), ["ready", "failed", "deleted"]);
    assert.equal((await fetch(`${service.url}/clients/${pod}`)).status, 404, "gone; the controller reported its deletion");
  });

  test("release deletes exactly the right pod (by pod_name, by source+id), idempotently, and deleted follows", async () => {
    const first = await provision(service.url, "lc-rel-1");
    const second = await provision(service.url, "lc-rel-2");
    const bystander = await provision(service.url, "lc-rel-3");
    await waitForEvent(sink, first, "ready");

    const byName = await send(service.url, "release", "rel-a", { pod_name: first });
    assert.equal(byName.status, 200, byName.body);
    assert.equal(byName.event?.type, `${T}release.done`);
    assert.equal(byName.event?.subject, first);
    assert.equal(byName.event?.causationid, "rel-a");
    await waitForEvent(sink, first, "deleted");

    const bySource = await send(service.url, "release", "rel-b", { source: "/e2e/lifecycle", id: "lc-rel-2" });
    assert.equal(bySource.event?.type, `${T}release.done`, bySource.body);
    assert.equal(bySource.event?.subject, second);
    await waitFor("both released pods to be gone", async () => (await getPodOrNull(namespace.name, first)) === null && (await getPodOrNull(namespace.name, second)) === null);
    assert.ok(await getPodOrNull(namespace.name, bystander), "the other client is untouched");

    const again = await send(service.url, "release", "rel-a", { pod_name: first });
    assert.equal(again.event?.id, byName.event?.id);
    assert.deepEqual(again.event?.data, byName.event?.data);

    const notOurs = await send(service.url, "release", "rel-c", { pod_name: "kube-apiserver" });
    assert.equal(notOurs.event?.type, `${T}release.done`, "a pod that does not exist is already released");
    const invalid = await send(service.url, "release", "rel-d", { gateway_name: "foo" });
    assert.equal(invalid.event?.type, `${T}release.failed`);
    assert.equal(invalid.event?.data?.reason, "InvalidEventData");
    await send(service.url, "release", "rel-e", { pod_name: bystander });
  });

  test("the service stopped (scaled to zero) while a client is deleted: the deletion completes without it", async () => {
    const pod = await provision(service.url, "lc-zero-1");
    await waitForEvent(sink, pod, "ready");
    await service.stop();
    try {
      assert.equal((await getPodOrNull(namespace.name, pod))?.metadata?.finalizers?.includes("podgateway.io/lifecycle"), true);
      await deletePodAsAdmin(namespace.name, pod);
      await waitForEvent(sink, pod, "deleted");
      await waitFor("the pod to be gone with no service running", async () => (await getPodOrNull(namespace.name, pod)) === null);
    } finally {
      service = await startService(env());
    }
  });

  test("a controller restart in between emits nothing twice and misses nothing", async () => {
    const a = await provision(service.url, "lc-restart-a");
    const b = await provision(service.url, "lc-restart-b");
    await waitForEvent(sink, a, "ready");
    await waitForEvent(sink, b, "ready");
    await new Promise((resolve) => setTimeout(resolve, 1_000)); // let the records land
    await controller.stop();

    // While the controller is down: a fails, b is deleted (held by the finalizer), c is provisioned and
    // becomes ready.
    await failPod(namespace.name, a, "DeadlineExceeded", "Pod was active on the node longer than the specified deadline");
    await deletePodAsAdmin(namespace.name, b);
    assert.ok(await getPodOrNull(namespace.name, b), "b is held until its deletion is reported");
    const c = await provision(service.url, "lc-restart-c");
    assert.equal((await getPodOrNull(namespace.name, c))?.metadata?.finalizers, undefined, "the service adds no finalizer");
    await waitFor("c to be Ready", async () => {
      const pod = await getPodOrNull(namespace.name, c);
      return pod?.status?.conditions?.some((condition) => condition.type === "Ready" && condition.status === "True") ?? false;
    });

    // The Lease was given up at shutdown: the new controller leads at once.
    controller = await startController(controllerEnv());
    currentController = controller;
    await waitForEvent(sink, a, "failed");
    await waitForEvent(sink, b, "deleted");
    await waitForEvent(sink, c, "ready");
    await new Promise((resolve) => setTimeout(resolve, 6_000)); // a few resync sweeps
    assert.deepEqual(kinds(sink, a), ["ready", "failed"]);
    assert.deepEqual(kinds(sink, b), ["ready", "deleted"]);
    assert.deepEqual(kinds(sink, c), ["ready"]);
    const lifecycle = sink.events.filter((event) => /\.(ready|failed|deleted)$/.test(event.type));
    assert.equal(new Set(lifecycle.map((event) => event.id)).size, lifecycle.length, "no event id delivered twice in this whole run");
  });

  test(`capacity: 50 concurrent pending events for one gateway give exactly ${CAPACITY} clients; a release frees a slot`, async () => {
    const replies = await Promise.all(Array.from({ length: 50 }, (_, index) => send(service.url, "pending", `lc-cap-${index}`, { gateway_name: "bar" })));
    const done = replies.filter((reply) => reply.event?.type === `${T}scheduling.done`);
    const full = replies.filter((reply) => reply.event?.data?.reason === "GatewayAtCapacity");
    assert.equal(done.length, CAPACITY, replies.filter((reply) => !reply.event).map((reply) => reply.body).join("\n"));
    assert.equal(full.length, 50 - CAPACITY);
    assert.match(full[0]!.event!.data!.message!, /gateway bar has its maximum of 5 clients/);
    const live = (await listPods(namespace.name, "setGateway=bar")).filter((pod) => !pod.metadata?.deletionTimestamp);
    assert.deepEqual(live.map((pod) => pod.metadata!.name).sort(), done.map((reply) => reply.event!.data!.pod_name).sort());
    assert.ok(live.every((pod) => !pod.spec?.schedulingGates?.length), "all of them past the routing gate");

    // A refused request stays refused while the gateway is full, and succeeds once a client is released.
    const refusedAgain = await send(service.url, "pending", "lc-cap-extra", { gateway_name: "bar" });
    assert.equal(refusedAgain.event?.data?.reason, "GatewayAtCapacity");
    const release = await send(service.url, "release", "lc-cap-release", { pod_name: done[0]!.event!.data!.pod_name });
    assert.equal(release.event?.type, `${T}release.done`, release.body);
    const admitted = await send(service.url, "pending", "lc-cap-extra", { gateway_name: "bar" });
    assert.equal(admitted.event?.type, `${T}scheduling.done`, admitted.body);
    // Another gateway is not affected by bar's capacity.
    await provision(service.url, "lc-cap-foo", "foo");
  });
});
