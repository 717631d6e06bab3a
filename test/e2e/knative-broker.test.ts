/**
 * The seed's flow end to end through the real Knative Eventing broker (cluster/knative.sh), from deploy/ as
 * shipped: a curl-style POST with ce-* headers to the broker ingress → the provisioner's Trigger → the
 * provisioner → its reply → the broker → the cloudevents-player Trigger → a sink (`cloudevents listen`, the
 * real conformance CLI, in the player's place), with sender authentication on as shipped (Knative OIDC); the
 * controller's lifecycle events go to the broker too. The provisioner and the sink run on this machine (the
 * Triggers name their URLs): the Knative Service on real Serving is test/e2e/serving.test.ts's and in-cluster.test.ts's.
 *
 * Needs the local cluster with Knative (`npm run cluster -- up`). Without it the tests FAIL, they never skip.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { cluster, getPodOrNull, routedBy, waitFor } from "../support/cluster.ts";
import {
  CLIENT_NS,
  type Flow,
  resultAtSink,
  sendToBroker,
  type Sink,
  startFlow,
} from "../support/knative.ts";
import type { RunningService } from "../support/service.ts";

const PENDING = "io.podgateway.client.pending";
const DONE = "io.podgateway.client.scheduling.done";
const FAILED = "io.podgateway.client.scheduling.failed";
const READY = "io.podgateway.client.ready";

describe("through the real Knative broker (deploy/ as shipped)", () => {
  let flow: Flow;
  let service: RunningService;
  let sink: Sink;
  const run = Date.now().toString(36);

  before(async () => {
    flow = await startFlow();
    ({ service, sink } = flow);
  });
  after(() => flow?.stop());

  const resultFor = (id: string) => resultAtSink(sink, id);

  test("`cluster status` reports every Knative Eventing component running", () => {
    const status = cluster("status");
    for (const c of ["kn-net", "kn-webhook", "kn-controller", "kn-mt-broker-controller", "kn-imc-controller", "kn-ingress", "kn-filter", "kn-dispatcher"]) {
      assert.match(status, new RegExp(`^${c}\\s+running \\(pid \\d+\\)$`, "m"));
    }
  });

  test("pending for gateway foo → scheduling.done at the sink, the pod routed by foo's webhook", async () => {
    const id = `kn-done-${run}`;
    const response = await sendToBroker({ id, source: "/e2e/curl", type: PENDING, data: { gateway_name: "foo" } });
    assert.equal(response.status, 202, await response.text());
    const result = await resultFor(id);
    assert.equal(result.ContextAttributes.type, DONE, JSON.stringify(result));
    const data = JSON.parse(result.Data!);
    assert.equal(result.ContextAttributes.subject, data.pod_name);
    const pod = await getPodOrNull(CLIENT_NS, data.pod_name);
    assert.ok(pod, `pod ${data.pod_name} exists`);
    assert.deepEqual(routedBy(pod), ["foo"]);
    assert.equal(pod.spec?.schedulingGates, undefined, "the gate is lifted");
    // The sink (like the player) sees everything on the broker: the request too.
    assert.ok((await sink.events()).some((e) => e.ContextAttributes.id === id && e.ContextAttributes.type === PENDING));
    // The controller (its own ServiceAccount, K_SINK = the Broker with its SinkBinding's OIDC token) tells
    // the broker when the pod is ready.
    await waitFor(`io.podgateway.client.ready for ${data.pod_name} at the sink`, async () =>
      (await sink.events()).some((e) => e.ContextAttributes.type === READY && e.ContextAttributes.subject === data.pod_name), 60_000);
  });

  test("pending for an unknown gateway → scheduling.failed at the sink, no pod", async () => {
    const id = `kn-failed-${run}`;
    const response = await sendToBroker({ id, source: "/e2e/curl", type: PENDING, data: { gateway_name: "nosuchgateway" } });
    assert.equal(response.status, 202, await response.text());
    const result = await resultFor(id);
    assert.equal(result.ContextAttributes.type, FAILED, JSON.stringify(result));
    const data = JSON.parse(result.Data!);
    assert.ok(data.reason, JSON.stringify(data));
    if (result.ContextAttributes.subject) {
      await waitFor("the unrouted pod to be gone", async () => (await getPodOrNull(CLIENT_NS, result.ContextAttributes.subject!)) === null);
    }
  });
});
