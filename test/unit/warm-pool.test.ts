import assert from "node:assert/strict";
import { test } from "node:test";
import type { Pod } from "kubernetes-types/core/v1";
import { loadConfig } from "../../src/config.ts";
import type { KubeRequest } from "../../src/kube/rest-client.ts";
import { Metrics } from "../../src/observability/metrics.ts";
import { claimName } from "../../src/pool/claim.ts";
import { isClaimable, LABEL_POOL, memberSettings, POOL_MEMBER, templateHash } from "../../src/pool/member.ts";
import { PoolKeeper } from "../../src/pool/keeper.ts";
import { PoolMembers } from "../../src/pool/members.ts";
import { serveFromPool, type WarmPool } from "../../src/pool/serve.ts";
import { clientPodName } from "../../src/provision/client-pod.ts";
import type { ProvisionerOptions } from "../../src/provision/provisioner.ts";
import { FakeKube } from "./lifecycle-fake-kube.ts";

/** The fake API server with the pod-gateway webhook's one visible effect: every created pod gets gateway-init. */
class RoutingKube extends FakeKube {
  override performRequest<T = unknown>(request: KubeRequest): Promise<T> {
    if (request.method === "POST" && request.path.endsWith("/pods")) {
      const pod = request.body as Pod;
      request = { ...request, body: { ...pod, spec: { ...pod.spec, initContainers: [{ name: "gateway-init" }] } } };
    }
    return super.performRequest(request);
  }
}

const settings = { namespace: "ns", gatewayLabelKey: "setGateway", gatewayAnnotationKey: "setGateway" };
const hash = templateHash(settings);
const rules = { sidecarContainer: "gateway-sidecar", routingInitContainer: "gateway-init" };
const READY = {
  phase: "Running",
  conditions: [{ type: "Ready", status: "True" }],
  containerStatuses: [{ name: "gateway-sidecar", ready: true, restartCount: 0, image: "", imageID: "", state: { running: {} } }],
};

/** A Ready, routed member of foo's pool, as the keeper leaves it. */
function addMember(kube: FakeKube, name: string): void {
  kube.addPod(name, { labels: { [LABEL_POOL]: POOL_MEMBER, "podgateway.io/pool-template": hash }, status: READY as Pod["status"] });
  const pod = kube.pods.get(name)!;
  pod.spec!.initContainers = [{ name: "gateway-init" }];
}

/** `members` Ready members of foo, and `replicas` services sharing the API server, each with its own pool watch. */
function setUp(members: number, replicas = 1) {
  const kube = new RoutingKube();
  for (let i = 0; i < members; i++) addMember(kube, `member-${i}`);
  const claimable = (pod: Pod) => isClaimable(pod, hash, rules);
  const log = () => {};
  const watching = new AbortController();
  const metrics = new Metrics();
  const pools = Array.from({ length: replicas }, (): WarmPool => ({
    sizes: { foo: members },
    members: new PoolMembers({ kube, hash, claimable, ...settings, log }),
    claim: { kube, namespace: "ns", claimable },
    metrics,
  }));
  const runs = Promise.all(pools.map((pool) => (pool.members as PoolMembers).run(watching.signal)));
  const provisioner: ProvisionerOptions = { kube, pod: settings, routingInitContainer: "gateway-init" };
  return { kube, warm: pools[0]!, pools, provisioner, metrics, watching, run: runs };
}

test("--warm-pool: gateway=size pairs, 0 is off, names checked like gateway names", () => {
  const parse = (value: string, env: Record<string, string> = {}) => {
    const loaded = loadConfig(["--warm-pool", value], env);
    if ("help" in loaded) throw new Error("help");
    return loaded.config["warm-pool"];
  };
  assert.deepEqual(parse(""), {});
  assert.deepEqual(parse("foo=3, bar=1,baz=0"), { foo: 3, bar: 1 });
  assert.throws(() => parse("foo"), /--warm-pool \(WARM_POOL\) must be gateway=size pairs/);
  assert.throws(() => parse("foo=-1"), /gateway=size pairs/);
  assert.throws(() => parse("foo=1001"), /at most 1000/);
  assert.throws(() => parse("foo=1,foo=2"), /each gateway once/);
  assert.throws(() => parse("no/slash=1"), /label value/);
  assert.throws(() => parse("bar=1", { GATEWAYS: "foo" }), /only name gateways that --gateways lists/);
});

test("the template hash changes with what members are made of; members carry it", () => {
  assert.notEqual(templateHash({ ...settings, image: "other" }), hash);
  assert.equal(templateHash({ ...settings }), hash);
  const labels = memberSettings(settings, hash).template!.metadata.labels!;
  assert.equal(labels[LABEL_POOL], POOL_MEMBER);
  assert.equal(labels["podgateway.io/pool-template"], hash);
});

test("40 requests, each delivered at once to two replicas, 10 members: each member claimed once, one client per request", async () => {
  const { kube, pools, provisioner, metrics, watching, run } = setUp(10, 2);
  const requests = Array.from({ length: 40 }, (_, i) => ({ source: "/unit", id: `r${i}`, gatewayName: "foo" }));
  const answers = await Promise.all(requests.flatMap((request) => pools.map((pool) => serveFromPool(provisioner, pool, request))));
  watching.abort();
  await run;

  const served = new Map<string, Set<string>>();
  answers.forEach((answer, i) => {
    assert.ok(answer.ok, JSON.stringify(answer));
    const id = requests[Math.floor(i / 2)]!.id;
    served.set(id, (served.get(id) ?? new Set()).add(answer.name));
  });
  for (const [id, pods] of served) assert.equal(pods.size, 1, `request ${id} got ${[...pods]}`);
  const pods = [...kube.pods.values()];
  // every request's pod serves it alone; no member is left half-claimed
  const clients = pods.filter((pod) => pod.metadata?.labels?.[LABEL_POOL] === undefined);
  assert.equal(clients.length, 40, "one pod per request, none more");
  const fromPool = clients.filter((pod) => pod.metadata?.name?.startsWith("member-"));
  assert.equal(fromPool.length, 10, "every member claimed, once");
  assert.equal(new Set(clients.map((pod) => pod.metadata?.annotations?.["podgateway.io/request-id"])).size, 40);
  // each request's claim record names its pod
  for (const request of requests) {
    const lease = kube.leases.get(claimName(request))!;
    assert.equal(lease.spec?.holderIdentity, [...served.get(request.id)!][0]);
    assert.equal(lease.metadata?.ownerReferences?.[0]?.name, lease.spec?.holderIdentity);
  }
  // both deliveries of a request served from a member count, each in its replica
  const claims = Number(/podgateway_pool_total\{gateway="foo",outcome="claim"\} (\d+)/.exec(metrics.render())?.[1]);
  assert.equal(claims, answers.filter((answer) => answer.ok && answer.servedFrom === "pool").length);
  assert.ok(claims >= 10);
  assert.match(metrics.render(), /podgateway_pool_total\{gateway="foo",outcome="miss"\} \d+/);
});

test("a redelivery answers with the same member and the same time; a member not Ready is never handed out", async () => {
  const { kube, warm, provisioner, watching, run } = setUp(2);
  kube.setStatus("member-1", { phase: "Running", conditions: [{ type: "Ready", status: "False" }] });
  const request = { source: "/unit", id: "again", gatewayName: "foo" };
  const first = await serveFromPool(provisioner, warm, request);
  const second = await serveFromPool(provisioner, warm, request);
  assert.ok(first.ok && second.ok);
  assert.equal(first.name, "member-0");
  assert.equal(first.servedFrom, "pool");
  assert.deepEqual([second.name, second.servedFrom, second.at], [first.name, first.servedFrom, first.at]);
  const other = await serveFromPool(provisioner, warm, { ...request, id: "other" });
  assert.ok(other.ok);
  assert.equal(other.servedFrom, "cold", "member-1 is not Ready: the cold path, not a member whose gateway may be down");
  watching.abort();
  await run;
});

test("a replica that died between its claim record and its patch: the redelivery finishes the claim", async () => {
  const { kube, warm, provisioner, watching, run } = setUp(1);
  const request = { source: "/unit", id: "cut", gatewayName: "foo" };
  const member = kube.pods.get("member-0")!;
  await kube.performRequest({
    method: "POST",
    path: "/apis/coordination.k8s.io/v1/namespaces/ns/leases",
    body: {
      metadata: { name: claimName(request), ownerReferences: [{ apiVersion: "v1", kind: "Pod", name: "member-0", uid: member.metadata!.uid }] },
      spec: { holderIdentity: "member-0" },
    },
  });
  const answer = await serveFromPool(provisioner, warm, request);
  assert.ok(answer.ok);
  assert.equal(answer.name, "member-0");
  assert.equal(kube.pods.get("member-0")!.metadata?.annotations?.["podgateway.io/request-id"], "cut");
  assert.equal(kube.pods.get("member-0")!.metadata?.labels?.[LABEL_POOL], undefined);
  watching.abort();
  await run;
});

test("the keeper fills the pool, refills after a claim, rolls members of another template, finishes a gated one", async (t) => {
  const kube = new RoutingKube();
  const stale = memberSettings({ ...settings, image: "old" }, templateHash({ ...settings, image: "old" }));
  // a member of the old template, and one a previous leader left behind its routing gate
  kube.addPod("old-member", { labels: stale.template!.metadata.labels, status: READY as Pod["status"] });
  const cutName = clientPodName({ source: "/podgateway/pool", id: "cut" });
  const cut = kube.addPod(cutName, {
    gated: true,
    labels: { [LABEL_POOL]: POOL_MEMBER, "podgateway.io/pool-template": hash },
    annotations: { "podgateway.io/request-source": "/podgateway/pool", "podgateway.io/request-id": "cut" },
  });
  kube.pods.get(cutName)!.spec!.initContainers = [{ name: "gateway-init" }];
  const metrics = new Metrics();
  const keeper = new PoolKeeper({
    kube,
    provisioner: { kube, pod: settings, routingInitContainer: "gateway-init" },
    sizes: { foo: 3 },
    hash,
    rules: { sidecarContainer: "gateway-sidecar", readyTimeoutMs: 0 },
    log: () => {},
    metrics,
    resyncMs: 20,
  });
  const term = new AbortController();
  const running = keeper.run(term.signal);
  t.after(async () => {
    term.abort();
    await running;
  });
  const members = () => [...kube.pods.values()].filter((pod) => pod.metadata?.labels?.[LABEL_POOL] === POOL_MEMBER);
  const settle = async (what: string, check: () => boolean) => {
    for (let i = 0; i < 200 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.ok(check(), what);
  };
  const settled = () => members().length === 3 && members().every((pod) => !pod.spec?.schedulingGates?.length);
  await settle("3 current members past their gate, the old one gone", () => settled() && !kube.pods.has("old-member"));
  assert.ok(members().every((pod) => pod.metadata?.labels?.["podgateway.io/pool-template"] === hash));
  assert.ok(members().every((pod) => !pod.spec?.schedulingGates?.length), "every member past its gate");
  assert.equal(kube.pods.get(cutName)?.metadata?.uid, cut.metadata?.uid, "the gated member was finished, not replaced");
  assert.match(metrics.render(), /outcome="refill"\} 2\n/);

  // a claim takes one out of the pool: the keeper makes another, and never more than the size
  const claimed = members()[0]!.metadata!.name!;
  await kube.performRequest({ method: "PATCH", path: `/api/v1/namespaces/ns/pods/${claimed}`, contentType: "application/json-patch+json", body: [{ op: "remove", path: "/metadata/labels/podgateway.io~1pool" }] });
  await settle("refilled to 3", settled);
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(members().length, 3);
  assert.ok(kube.pods.has(claimed), "the claimed member is a client now, left alone");
});
