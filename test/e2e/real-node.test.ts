/**
 * The routing itself, on the real node: an event through the broker as shipped becomes a client pod that runs,
 * whose traffic leaves through its gateway pod (VXLAN to the gateway, DHCP from its dnsmasq, the gateway's NAT)
 * and never any other way — not while its gateway is gone, and never off this machine.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { getPodOrNull, serviceAccountToken, waitFor } from "../support/cluster.ts";
import { CLIENT_NS, type Flow, PROVISIONER, SERVICE_NS, startFlow } from "../support/knative.ts";
import {
  askEcho, echoLogged, egressDrops, execIn, gatewayPod, logsOf, nodeEnv, provisionThroughBroker, REAL_NODE_TEMPLATE, scaleGateway,
} from "../support/real-node.ts";

/**
 * The operator's client command here: a client with a teardown (a VPN client's, a job's checkpoint) that takes a
 * few seconds after SIGTERM and then tells the echo host, through its gateway, that it stopped cleanly. A force delete
 * (grace period 0: the kubelet's minimum of 2 s, then SIGKILL) cuts it short.
 */
const TEARDOWN = ["sh", "-c", `trap 'sleep 4; curl -sS --max-time 5 ${nodeEnv().echoUrl}/sigterm/$HOSTNAME; exit 0' TERM; sleep infinity & wait`];

describe("real node: clients run and their traffic leaves through their gateway", { timeout: 900_000 }, () => {
  let flow: Flow;
  let dropsBefore: number;
  const clients: Record<string, string> = {};

  before(async () => {
    dropsBefore = egressDrops();
    flow = await startFlow(undefined, { CLIENT_POD_TEMPLATE: REAL_NODE_TEMPLATE, CLIENT_COMMAND: JSON.stringify(TEARDOWN) });
  });
  after(async () => {
    scaleGateway("foo", 1);
    await flow?.stop();
  });

  test("a pending event for foo through the broker: a client running on the real node, tunnelled to foo", async () => {
    const pod = clients.foo = await provisionThroughBroker(flow.sink, "foo");

    // gateway-init: the node's default route deleted, nothing reachable (the ping fails here, on the pod),
    // then vxlan0 to foo's gateway and a DHCP lease from its dnsmasq
    const init = logsOf(CLIENT_NS, pod, "gateway-init");
    assert.match(init, /ping: connect: Network is unreachable|Network unreachable/, "8.8.8.8 must be unreachable once the default route is gone");
    assert.match(init, /vxlan0/);
    const lease = init.match(/lease of (172\.16\.0\.\d+) obtained/);
    assert.ok(lease, `no DHCP lease in gateway-init's log:\n${init}`);
    assert.match(init, /Gateway ready and reachable/);

    const route = execIn(CLIENT_NS, pod, "gateway-sidecar", "ip", "route", "show", "default");
    assert.match(route.stdout, /default via 172\.16\.0\.1 dev vxlan0/, route.stderr);
    const gateway = gatewayPod("foo")!;
    assert.match(logsOf("gateways", gateway.name, "main"), new RegExp(`DHCPACK\\(vxlan0\\) ${lease![1]!.replaceAll(".", "\\.")} `));
  });

  test("its request to the echo host arrives from foo's gateway pod, not from the client", async () => {
    const pod = clients.foo!;
    const seen = askEcho(CLIENT_NS, pod);
    assert.ok(seen.ok, `request failed: ${!seen.ok && seen.error}`);
    const client = (await getPodOrNull(CLIENT_NS, pod))!;
    assert.equal(seen.remote_address, gatewayPod("foo")!.ip);
    assert.notEqual(seen.remote_address, client.status?.podIP);
  });

  test("a bar client's request arrives from bar's gateway pod", async () => {
    const pod = clients.bar = await provisionThroughBroker(flow.sink, "bar");
    const seen = askEcho(CLIENT_NS, pod);
    assert.ok(seen.ok, `request failed: ${!seen.ok && seen.error}`);
    assert.equal(seen.remote_address, gatewayPod("bar")!.ip);
    assert.notEqual(seen.remote_address, gatewayPod("foo")!.ip);
  });

  test("fail-closed: with foo's gateway gone nothing gets out; when it is back the tunnel is re-made", async () => {
    const pod = clients.foo!;
    const drops = egressDrops();
    scaleGateway("foo", 0);
    const cut = askEcho(CLIENT_NS, pod, "client", 5);
    assert.equal(cut.ok, false, `a foo client reached the echo host without its gateway: ${JSON.stringify(cut)}`);
    assert.equal(egressDrops(), drops, "no packet may try the node's own route out");

    scaleGateway("foo", 1);
    const gateway = gatewayPod("foo")!;
    // client_sidecar pings the tunnel every 10 s and runs client_init.sh again when it fails
    let seen: ReturnType<typeof askEcho> | undefined;
    await waitFor("the foo client to reach the echo host through the new gateway", async () => {
      seen = askEcho(CLIENT_NS, pod, "client", 3);
      return seen.ok;
    }, 240_000);
    assert.equal(seen!.ok && seen!.remote_address, gateway.ip);
  });

  test("release: the client gets SIGTERM and runs its teardown (the pod's own grace period, not a force delete)", async () => {
    const pod = await provisionThroughBroker(flow.sink, "foo");
    // sent as the broker would: a token of the Trigger's OIDC identity for the provisioner's audience
    const token = await serviceAccountToken(SERVICE_NS, `${PROVISIONER}-oidc-eventing.knative.dev-trigger`, PROVISIONER);
    const response = await fetch(flow.service.url, {
      method: "POST",
      headers: {
        "ce-specversion": "1.0", "ce-id": `release-${pod}`, "ce-source": "/e2e/real-node", "ce-type": "io.podgateway.client.release",
        "content-type": "application/json", authorization: `Bearer ${token}`,
      },
      body: JSON.stringify({ pod_name: pod }),
    });
    assert.equal(response.headers.get("ce-type"), "io.podgateway.client.release.done", await response.text());
    await waitFor(`${pod}'s teardown to reach the echo host`, async () => echoLogged(`/sigterm/${pod}`) !== undefined, 60_000);
    assert.match(echoLogged(`/sigterm/${pod}`)!, new RegExp(`from ${gatewayPod("foo")!.ip.replaceAll(".", "\\.")}$`));
    await waitFor(`${pod} to be gone`, async () => (await getPodOrNull(CLIENT_NS, pod)) === null, 90_000);
  });

  test("every packet stays on this machine: the node's egress guard dropped nothing, and does drop", () => {
    assert.equal(egressDrops(), dropsBefore, "a pod sent to an address that is not on this machine");
    // the positive control: an address routed into an empty namespace, never off the machine
    const attempt = askEcho(CLIENT_NS, clients.foo!, "client", 3, `http://${nodeEnv().voidIp}/`);
    assert.equal(attempt.ok, false);
    assert.ok(egressDrops() > dropsBefore, "the guard did not count the client's packet to a non-local address");
  });
});
