/**
 * The warm pool on the local cluster (src/pool/): 3 service replicas and 2 controllers as processes, the real API
 * server and the real pod-gateway webhooks, a pool of 50 members for foo on the kwok nodes. Exactly once under a
 * burst with redeliveries to two replicas at the same moment; a replica killed mid-claim and the leader killed
 * mid-refill; then a small pool of real pods on the real node: Ready and routed, and never handed out while their
 * gateway is down.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { CloudEvent, HTTP } from "cloudevents";
import type { Pod } from "kubernetes-types/core/v1";
import { getPodOrNull, listPods, routedNamespace, waitFor } from "../support/cluster.ts";
import { replyEvent } from "../support/received.ts";
import { askEcho, gatewayPod, REAL_NODE_TEMPLATE, routeNamespace, scaleGateway } from "../support/real-node.ts";
import { type RunningService, startController, startService } from "../support/service.ts";

const POOL = 50;
const LEASE_S = 4;
const MEMBERS = "app.kubernetes.io/managed-by=podgateway-provisioner,podgateway.io/pool=member";

type Answer = { status: number; body: string; type?: string; pod?: string; servedFrom?: string; headers: Record<string, string> };

/** One delivery of a pending event (a fixed time: every send of an id is a redelivery of the same event). */
async function deliver(url: string, id: string, gateway = "foo"): Promise<Answer> {
  const message = HTTP.binary(new CloudEvent({ id, source: "/e2e/warm-pool", type: "io.podgateway.client.pending", time: "2026-01-01T00:00:00Z", data: { gateway_name: gateway } }));
  const response = await fetch(url, { method: "POST", headers: message.headers as Record<string, string>, body: message.body as string });
  const body = await response.text();
  const headers = Object.fromEntries(response.headers);
  const event = replyEvent(headers, body);
  const data = event?.data as { pod_name?: string; served_from?: string } | undefined;
  // what a sender sees of the answer: its CloudEvent attributes and data (not the Date of the HTTP response)
  const ce = Object.fromEntries(Object.entries(headers).filter(([name]) => name.startsWith("ce-") || name === "content-type"));
  return { status: response.status, body, type: event?.type, pod: data?.pod_name, servedFrom: data?.served_from, headers: ce };
}

const isReady = (pod: Pod) => pod.status?.phase === "Running" && pod.status.conditions?.some((c) => c.type === "Ready" && c.status === "True") === true;
const readyMembers = async (namespace: string, gateway = "foo") =>
  (await listPods(namespace, `${MEMBERS},setGateway=${gateway}`)).filter((pod) => isReady(pod) && !pod.metadata?.deletionTimestamp);
const leading = async (controller: RunningService) => (await (await fetch(`${controller.url}/leader`)).json()).leading as boolean;

describe("warm pool: 3 replicas, a pool of 50 on kwok nodes", { timeout: 300_000 }, () => {
  let namespace: Awaited<ReturnType<typeof routedNamespace>>;
  let services: RunningService[] = [];
  let controllers: RunningService[] = [];
  const env = () => ({ CLIENT_NAMESPACE: namespace.name, WARM_POOL: `foo=${POOL}` });
  const controllerEnv = () => ({
    ...env(),
    GATED_POD_TIMEOUT_SECONDS: "5",
    LEADER_LEASE_DURATION_SECONDS: String(LEASE_S),
    LEADER_RENEW_DEADLINE_SECONDS: "3",
    LEADER_RETRY_PERIOD_SECONDS: "1",
  });

  before(async () => {
    namespace = await routedNamespace("e2e-warm-pool");
    [services, controllers] = await Promise.all([
      Promise.all([0, 1, 2].map(() => startService(env()))),
      Promise.all([0, 1].map(() => startController(controllerEnv()))),
    ]);
  });
  after(async () => {
    await Promise.all([...services, ...controllers].map((process) => process.stop("SIGKILL").catch(() => {})));
    await namespace?.remove();
  });

  test("the leader fills the pool: 50 Ready, routed members of foo, made from the template, none for bar", async () => {
    const started = Date.now();
    await waitFor(`${POOL} Ready members`, async () => (await readyMembers(namespace.name)).length === POOL, 120_000);
    const fill = (Date.now() - started) / 1000;
    const members = await listPods(namespace.name, MEMBERS);
    assert.equal(members.length, POOL, "no more members than the size");
    for (const pod of members) {
      assert.ok(pod.spec?.initContainers?.some((container) => container.name === "gateway-init"), `${pod.metadata?.name} routed`);
      assert.deepEqual(pod.spec?.schedulingGates ?? [], []);
      assert.match(pod.metadata?.labels?.["podgateway.io/pool-template"] ?? "", /^[0-9a-f]{16}$/);
    }
    const metrics = await (await fetch(`${(await leaderOf(controllers)).url}/metrics`)).text();
    assert.match(metrics, new RegExp(`podgateway_pool_total\\{gateway="foo",outcome="refill"\\} ${POOL}\\n`));
    // the refill rate for BENCHMARKS.md: members made Ready per second, from an empty pool
    console.log(`# pool of ${POOL} Ready in ${fill.toFixed(1)} s: ${(POOL / fill).toFixed(1)} members/s`);
    const clients = await (await fetch(`${services[0]!.url}/clients`)).json();
    assert.deepEqual(clients.clients, [], "members are no clients");
  });

  test("200 events (40 redelivered twice, at once to two replicas): 200 clients, ≥ 50 from the pool, each member once, no duplicate", async () => {
    const ids = Array.from({ length: 200 }, (_, i) => `burst-${i}`);
    const deliveries = ids.flatMap((id, i) => {
      const first = deliver(services[i % 3]!.url, id);
      if (i >= 40) return [first.then((answer) => [answer])];
      // the first two at the same moment to two replicas, the third a little later to the third replica
      const second = deliver(services[(i + 1) % 3]!.url, id);
      return [Promise.all([first, second]).then(async (two) => [...two, await deliver(services[(i + 2) % 3]!.url, id)])];
    });
    const answers = await Promise.all(deliveries);

    const pods = new Set<string>();
    answers.forEach((perId, i) => {
      for (const answer of perId) {
        assert.equal(answer.status, 200, answer.body);
        assert.equal(answer.type, "io.podgateway.client.scheduling.done", answer.body);
        assert.deepEqual([answer.headers, answer.body], [perId[0]!.headers, perId[0]!.body], `${ids[i]}: every delivery the byte-identical answer`);
      }
      pods.add(perId[0]!.pod!);
    });
    assert.equal(pods.size, 200, "200 distinct clients");
    const fromPool = answers.filter((perId) => perId[0]!.servedFrom === "pool").length;
    assert.ok(fromPool >= POOL, `${fromPool} from the pool`);

    const clients = (await listPods(namespace.name, "app.kubernetes.io/managed-by=podgateway-provisioner,!podgateway.io/pool"))
      .filter((pod) => !pod.metadata?.deletionTimestamp);
    assert.equal(clients.length, 200, "not one pod more than requests: nothing duplicated");
    const owners = clients.map((pod) => pod.metadata?.annotations?.["podgateway.io/request-id"]);
    assert.equal(new Set(owners).size, 200, "each pod serves one request, each member claimed once");
    assert.deepEqual(new Set(owners), new Set(ids));
    for (const pod of clients) assert.deepEqual(pod.spec?.schedulingGates ?? [], [], `${pod.metadata?.name} is past its gate`);

    await waitFor(`the pool back to ${POOL} Ready members`, async () => (await readyMembers(namespace.name)).length === POOL, 60_000);
    assert.equal((await listPods(namespace.name, MEMBERS)).filter((pod) => !pod.metadata?.deletionTimestamp).length, POOL);
    const metrics = (await Promise.all(services.map(async (service) => await (await fetch(`${service.url}/metrics`)).text()))).join("");
    const claims = [...metrics.matchAll(/podgateway_pool_total\{gateway="foo",outcome="claim"\} (\d+)/g)].reduce((sum, match) => sum + Number(match[1]), 0);
    assert.ok(claims >= fromPool, `claims counted: ${claims}`);
    assert.match(metrics, /podgateway_pool_total\{gateway="foo",outcome="miss"\} \d+/);
  });

  test("a replica killed mid-claim, the leader killed mid-refill: nothing duplicated, nothing stranded, the pool recovers", async () => {
    const ids = Array.from({ length: 30 }, (_, i) => `killed-${i}`);
    const victim = services[0]!;
    const leader = await leaderOf(controllers);
    let firstAnswers: () => void;
    const answeredThree = new Promise<void>((resolve) => (firstAnswers = resolve));
    let answered = 0;
    const inFlight = ids.map((id) => deliver(victim.url, id).then((answer) => (++answered === 3 && firstAnswers(), answer), () => undefined));
    // both die while claims and refills are under way: once the first answers are out, the others still claiming
    await answeredThree;
    await Promise.all([victim.stop("SIGKILL"), leader.stop("SIGKILL")]);
    const cut = (await Promise.all(inFlight)).filter((answer) => answer?.status !== 200).length;
    console.log(`# ${cut} of 30 deliveries cut short by the kill`);
    assert.ok(cut > 0, "the kill came mid-claim");

    services = [...services.slice(1), await startService(env())];
    const answers = await Promise.all(ids.map((id, i) => deliver(services[i % 2]!.url, id)));
    for (const answer of answers) assert.equal(answer.type, "io.podgateway.client.scheduling.done", answer.body);
    assert.equal(new Set(answers.map((answer) => answer.pod)).size, 30);

    const standby = controllers.find((controller) => controller !== leader)!;
    controllers = [standby, await startController(controllerEnv())];
    await waitFor("the standby to lead", () => leading(standby), 30_000);
    await waitFor(`the pool back to ${POOL} Ready members, none behind its gate`, async () => {
      const members = (await listPods(namespace.name, MEMBERS)).filter((pod) => !pod.metadata?.deletionTimestamp);
      return members.length === POOL && members.every(isReady);
    }, 60_000);
    // nothing stranded: every pod of these requests serves exactly one of them; no gated pod is left (swept or finished)
    await waitFor("no gated pod left", async () => (await listPods(namespace.name)).every((pod) => (pod.spec?.schedulingGates ?? []).length === 0), 30_000);
    const clients = (await listPods(namespace.name, "app.kubernetes.io/managed-by=podgateway-provisioner,!podgateway.io/pool"))
      .filter((pod) => !pod.metadata?.deletionTimestamp && String(pod.metadata?.annotations?.["podgateway.io/request-id"]).startsWith("killed-"));
    assert.equal(clients.length, 30, "one client per request");
  });
});

describe("warm pool on the real node: Ready and routed, never handed out while the gateway is down", { timeout: 420_000 }, () => {
  let namespace: Awaited<ReturnType<typeof routedNamespace>>;
  let service: RunningService;
  let controller: RunningService;

  before(async () => {
    namespace = await routedNamespace("e2e-warm-real");
    routeNamespace(namespace.name);
    const env = { CLIENT_NAMESPACE: namespace.name, WARM_POOL: "foo=2", CLIENT_POD_TEMPLATE: WARM_TEMPLATE };
    [service, controller] = await Promise.all([startService(env), startController(env)]);
  });
  after(async () => {
    scaleGateway("foo", 1);
    await Promise.all([service, controller].map((process) => process?.stop("SIGKILL").catch(() => {})));
    await namespace?.remove();
  });

  test("a warm client is Ready, on the real node, and its traffic leaves through foo's gateway", async () => {
    await waitFor("2 Ready members on the real node", async () => (await readyMembers(namespace.name)).length === 2, 240_000);
    const answer = await deliver(service.url, `real-${Date.now()}`);
    assert.equal(answer.servedFrom, "pool", answer.body);
    const pod = (await getPodOrNull(namespace.name, answer.pod!))!;
    assert.ok(isReady(pod), "Ready when the answer is sent");
    const seen = askEcho(namespace.name, answer.pod!);
    assert.ok(seen.ok, `request failed: ${!seen.ok && seen.error}`);
    assert.equal(seen.remote_address, gatewayPod("foo")!.ip);
  });

  test("foo's gateway gone: its members turn not Ready and none is handed out; the event takes the cold path", async () => {
    await waitFor("the pool refilled", async () => (await readyMembers(namespace.name)).length === 2, 240_000);
    scaleGateway("foo", 0);
    await waitFor("foo's members not Ready", async () => (await readyMembers(namespace.name)).length === 0, 60_000);
    const answer = await deliver(service.url, `real-down-${Date.now()}`);
    assert.equal(answer.type, "io.podgateway.client.scheduling.done", answer.body);
    assert.equal(answer.servedFrom, "cold", "no member of foo's pool is handed out");
    const members = await listPods(namespace.name, MEMBERS);
    assert.ok(members.every((pod) => pod.metadata?.name !== answer.pod));
  });
});

/** The local overlay's template with the warm pool's readiness probe (through the tunnel to the gateway). */
const WARM_TEMPLATE = REAL_NODE_TEMPLATE.replace("cluster/deploy/", "cluster/deploy-warm-pool/");

async function leaderOf(controllers: RunningService[]): Promise<RunningService> {
  let leader: RunningService | undefined;
  await waitFor("a leader", async () => {
    for (const controller of controllers) if (await leading(controller).catch(() => false)) leader = controller;
    return leader !== undefined;
  }, 30_000);
  return leader!;
}
