/**
 * Sender authentication end to end with Eventing's own OIDC (feature `authentication-oidc`, on in the local
 * cluster): deploy/ as shipped turns it on in the provisioner (OIDC_AUDIENCE = the Trigger's subscriber.audience,
 * ALLOWED_SENDERS = the Trigger's OIDC identity). The broker filter sends the Trigger's token for that audience and
 * the provisioner accepts it by TokenReview; a direct request without a token is 401, and so is the broker ingress
 * without one.
 *
 * Needs the local cluster with Knative (`npm run cluster -- up`).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { getPodOrNull, routedBy } from "../support/cluster.ts";
import { CLIENT_NS, type Flow, kubectl, PROVISIONER, resultAtSink, SERVICE_NS, sendToBroker, shippedEnv, startFlow } from "../support/knative.ts";

describe("Knative OIDC sender authentication through the real broker (deploy/ as shipped)", () => {
  let flow: Flow;
  const run = Date.now().toString(36);
  const shipped = shippedEnv("service.yaml", "Service");
  const pending = (id: string) => ({ id, source: "/e2e/oidc", type: "io.podgateway.client.pending", data: { gateway_name: "foo" } });

  before(async () => {
    flow = await startFlow();
  });
  after(() => flow?.stop());

  test("deploy/'s OIDC_AUDIENCE and ALLOWED_SENDERS are the audience and identity Eventing gives the Trigger", () => {
    const trigger = JSON.parse(kubectl("get", "triggers.eventing.knative.dev", PROVISIONER, "-n", SERVICE_NS, "-o", "json"));
    assert.equal(trigger.status.subscriberAudience, shipped.OIDC_AUDIENCE);
    assert.equal(`system:serviceaccount:${SERVICE_NS}:${trigger.status.auth.serviceAccountName}`, shipped.ALLOWED_SENDERS);
  });

  test("an event through the broker carries the Trigger's token and is provisioned", async () => {
    const id = `kn-oidc-${run}`;
    const response = await sendToBroker(pending(id));
    assert.equal(response.status, 202, await response.text());
    const result = (await resultAtSink(flow.sink, id)).ContextAttributes;
    assert.equal(result.type, "io.podgateway.client.scheduling.done");
    const pod = await getPodOrNull(CLIENT_NS, result.subject!);
    assert.ok(pod);
    assert.deepEqual(routedBy(pod), ["foo"]);
    assert.ok(flow.service.logs.some((l) => l.outcome === "done"), "the provisioner handled it");
    assert.ok(!flow.service.output().includes("eyJ"), "no token in the logs");
  });

  test("a direct request without a token is 401; so is the broker without one", async () => {
    const direct = await fetch(flow.service.url, {
      method: "POST",
      headers: { "ce-specversion": "1.0", "ce-id": `kn-oidc-direct-${run}`, "ce-source": "/e2e/oidc", "ce-type": "io.podgateway.client.pending", "content-type": "application/json" },
      body: JSON.stringify({ gateway_name: "foo" }),
    });
    assert.equal(direct.status, 401, await direct.text());
    const viaBroker = await sendToBroker(pending(`kn-oidc-anon-${run}`), "");
    assert.equal(viaBroker.status, 401, await viaBroker.text());
  });
});
