/** Release events and the `/clients` status routes, through the app, against the in-memory API server. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { CloudEvent, type CloudEventV1, HTTP } from "cloudevents";
import { KubeTransportError } from "../../src/kube/errors.ts";
import { claimSlot } from "../../src/lifecycle/capacity.ts";
import { clientPodName } from "../../src/provision/client-pod.ts";
import { FakeKube, testLifecycle } from "./lifecycle-fake-kube.ts";
import { testApp } from "../support/app.ts";

function setup() {
  const kube = new FakeKube();
  const lifecycle = testLifecycle(kube, 2);
  const app = testApp(kube, {
    provisioner: {
      kube,
      routingInitContainer: "gateway-init",
      pod: { namespace: "ns", image: "i", command: ["c"], gatewayLabelKey: "setGateway", gatewayAnnotationKey: "setGateway" },
    },
    maxInFlight: 10,
    lifecycle,
  });
  const release = async (id: string, data: unknown) => {
    const message = HTTP.binary(new CloudEvent({ id, source: "/sender", type: "io.podgateway.client.release", data }));
    const response = await app.fetch(new Request("http://x/", { method: "POST", headers: message.headers as Record<string, string>, body: message.body as string }));
    const body = await response.text();
    const event = response.headers.get("ce-type") ? HTTP.toEvent({ headers: Object.fromEntries(response.headers), body }) as CloudEventV1<Record<string, string>> : undefined;
    return { status: response.status, event, body };
  };
  const get = async (path: string) => {
    const response = await app.fetch(new Request(`http://x${path}`));
    return { status: response.status, json: await response.json() };
  };
  return { kube, app, release, get, lifecycle };
}

test("release by pod_name deletes exactly that pod and frees its slot; again, the same answer", async () => {
  const { kube, release } = setup();
  const pod = kube.addPod("pgw-client-a");
  kube.addPod("pgw-client-b");
  await claimSlot({ kube, namespace: "ns", maxPerGateway: 2 }, "foo", pod);
  assert.equal(kube.leases.size, 1);

  const first = await release("r1", { pod_name: "pgw-client-a" });
  assert.equal(first.status, 200, first.body);
  assert.equal(first.event?.type, "io.podgateway.client.release.done");
  assert.equal(first.event?.subject, "pgw-client-a");
  assert.equal(first.event?.causationid, "r1");
  assert.deepEqual([...kube.pods.keys()], ["pgw-client-b"]);
  assert.equal(kube.leases.size, 0);

  const again = await release("r1", { pod_name: "pgw-client-a" });
  // The same id, type and data (only `time` says when): a broker or consumer can drop the duplicate.
  assert.deepEqual({ ...again.event, time: undefined }, { ...first.event, time: undefined });
});

test("release by the pending event's source and id finds the derived pod; a mismatch is refused", async () => {
  const { kube, release } = setup();
  const name = clientPodName({ source: "/src", id: "req-7" });
  kube.addPod(name, { annotations: { "podgateway.io/request-id": "req-7" } });
  const done = await release("r2", { source: "/src", id: "req-7" });
  assert.equal(done.event?.type, "io.podgateway.client.release.done", done.body);
  assert.equal(done.event?.subject, name);
  assert.equal(kube.pods.size, 0);

  // A pod of the derived name belonging to another request (a collision) is left alone.
  const other = clientPodName({ source: "/src", id: "req-8" });
  kube.addPod(other, { annotations: { "podgateway.io/request-id": "something-else" } });
  const refused = await release("r3", { source: "/src", id: "req-8" });
  assert.equal(refused.event?.type, "io.podgateway.client.release.failed");
  assert.equal(refused.event?.data?.reason, "NameConflict");
  assert.ok(kube.pods.has(other));
});

test("pods this service did not create are never deleted; invalid data names the rule", async () => {
  const { kube, release } = setup();
  kube.addPod("someone-elses", { labels: { "app.kubernetes.io/managed-by": "helm" } });
  const refused = await release("r4", { pod_name: "someone-elses" });
  assert.equal(refused.event?.data?.reason, "NotAClient");
  assert.ok(kube.pods.has("someone-elses"));

  const invalid = await release("r5", { pod_name: "Not A Pod" });
  assert.equal(invalid.event?.type, "io.podgateway.client.release.failed");
  assert.equal(invalid.event?.data?.reason, "InvalidEventData");
  const neither = await release("r6", { gateway_name: "foo" });
  assert.match(neither.event?.data?.message ?? "", /either pod_name, or source and id/);
});

test("an unreachable API server makes the sender retry (503), nothing is answered yet", async () => {
  const { kube, release } = setup();
  kube.failures.push(new KubeTransportError("connection refused"));
  const reply = await release("r7", { pod_name: "pgw-client-a" });
  assert.equal(reply.status, 503);
  assert.equal(reply.event, undefined);
});

test("GET /clients/{pod} and /clients?gateway= report states; unknown is 404, bad input 400, outage 503", async () => {
  const { kube, get } = setup();
  kube.addPod("p-ready", {
    status: {
      phase: "Running",
      conditions: [{ type: "Ready", status: "True" }],
      containerStatuses: [{ name: "gateway-sidecar", ready: true, restartCount: 0, image: "i", imageID: "", state: { running: {} } }],
    },
  });
  kube.addPod("p-pending");
  kube.addPod("p-failed", { status: { phase: "Failed", reason: "Evicted" } });
  kube.addPod("p-bar", { labels: { setGateway: "bar" } });
  kube.addPod("not-ours", { labels: { "app.kubernetes.io/managed-by": "helm" } });

  const one = await get("/clients/p-ready");
  assert.equal(one.status, 200);
  assert.equal(one.json.state, "ready");
  assert.equal(one.json.gateway_name, "foo");
  assert.deepEqual(one.json.request, { source: "/src", id: "req-p-ready" });
  assert.equal((await get("/clients/p-failed")).json.reason, "Evicted");
  assert.equal((await get("/clients/not-ours")).status, 404);
  assert.equal((await get("/clients/nope")).status, 404);

  const foo = await get("/clients?gateway=foo");
  assert.equal(foo.status, 200);
  assert.deepEqual(foo.json.clients.map((c: { pod_name: string; state: string }) => `${c.pod_name}=${c.state}`).sort(), [
    "p-failed=failed",
    "p-pending=pending",
    "p-ready=ready",
  ]);
  assert.equal((await get("/clients")).json.clients.length, 4);
  assert.equal((await get("/clients?gateway=no%20spaces")).status, 400);
  kube.failures.push(new KubeTransportError("connection refused"));
  assert.equal((await get("/clients/p-ready")).status, 503);
});

test("GET /clients is paged: limit and continue, as the API server pages; no continue on the last page", async () => {
  const { kube, get } = setup();
  for (let i = 0; i < 5; i++) kube.addPod(`p-${i}`);
  const seen: string[] = [];
  let token: string | undefined;
  let pages = 0;
  do {
    const page = await get(`/clients?limit=2${token ? `&continue=${encodeURIComponent(token)}` : ""}`);
    assert.equal(page.status, 200);
    assert.ok(page.json.clients.length <= 2);
    seen.push(...page.json.clients.map((c: { pod_name: string }) => c.pod_name));
    token = page.json.continue;
    pages++;
  } while (token);
  assert.equal(pages, 3);
  assert.deepEqual(seen.sort(), ["p-0", "p-1", "p-2", "p-3", "p-4"]);
  assert.equal((await get("/clients")).json.continue, undefined, "the default page holds all five");
  for (const bad of ["0", "501", "x", "-1"]) assert.equal((await get(`/clients?limit=${bad}`)).status, 400, `limit=${bad}`);
  assert.equal((await get("/clients?continue=garbage")).status, 400);
});
