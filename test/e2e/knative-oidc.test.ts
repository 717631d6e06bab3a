/**
 * Sender authentication end to end with Eventing's own OIDC (feature `authentication-oidc`): the Trigger gets
 * an OIDC identity, the broker filter sends its token for the Knative Service's audience, and the provisioner
 * (--oidc-audience, --allowed-senders = that identity) accepts it by TokenReview. A direct request without a
 * token is 401. The feature is switched on for this file only, and off again afterwards.
 *
 * Needs the local cluster with Knative (`npm run cluster -- up`).
 */
import assert from "node:assert/strict";
import { type AddressInfo, createServer } from "node:net";
import { after, before, describe, test } from "node:test";
import { adminClient, cluster, getPodOrNull, routedBy, waitFor } from "../support/cluster.ts";
import {
  applyDeploy,
  awaitDelivery,
  CLIENT_NS,
  kubectl,
  PLAYER,
  PROVISIONER,
  removeDeploy,
  SERVICE_NS,
  sendToBroker,
  setServiceAddress,
  type Sink,
  startProvisioner,
  startSink,
  waitReady,
} from "../support/knative.ts";
import type { RunningService } from "../support/service.ts";

// What Knative Serving puts into a Service's status.address.audience.
const AUDIENCE = `serving.knative.dev/service/${SERVICE_NS}/${PROVISIONER}`;
const DELEGATOR = "e2e-knative-oidc-auth-delegator";
const SENDER = "e2e-broker-sender";

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    }).on("error", reject);
  });
}

const setOidc = (state: "enabled" | "disabled") =>
  kubectl("patch", "configmap", "config-features", "-n", "knative-eventing", "--type=merge", "-p", JSON.stringify({ data: { "authentication-oidc": state } }));

describe("Knative OIDC sender authentication through the real broker", () => {
  let service: RunningService;
  let sink: Sink;
  let brokerToken: string;
  const run = Date.now().toString(36);

  before(async () => {
    // The filter and dispatcher cache the tokens they mint per ServiceAccount name for an hour; an earlier run's
    // namespaces had ServiceAccounts of the same names (now deleted, so their tokens are refused): start afresh.
    for (const c of ["kn-filter", "kn-dispatcher"]) {
      cluster("stop", c);
      cluster("start", c);
    }
    setOidc("enabled");
    await applyDeploy();
    sink = await startSink();
    setServiceAddress(PLAYER, sink.url);
    // The Trigger gets its OIDC identity once its subscriber resolves, and the provisioner needs that identity
    // to start: give the Knative Service the address the provisioner will listen on.
    const port = await freePort();
    setServiceAddress(PROVISIONER, `http://127.0.0.1:${port}`, AUDIENCE);
    const identity = await (async () => {
      let name = "";
      await waitFor("the Trigger's OIDC identity", async () => {
        name = kubectl("get", "triggers.eventing.knative.dev", PROVISIONER, "-n", SERVICE_NS, "-o", "jsonpath={.status.auth.serviceAccountName}");
        return name !== "";
      });
      return `system:serviceaccount:${SERVICE_NS}:${name}`;
    })();
    // The note in deploy/rbac.yaml: TokenReview needs the auth-delegator role.
    kubectl("create", "clusterrolebinding", DELEGATOR, "--clusterrole=system:auth-delegator", `--serviceaccount=${SERVICE_NS}:${PROVISIONER}`);
    service = await startProvisioner({ OIDC_AUDIENCE: AUDIENCE, ALLOWED_SENDERS: identity, PORT: String(port) }, AUDIENCE);
    await waitReady("brokers.eventing.knative.dev", "default");
    await waitReady("triggers.eventing.knative.dev", PROVISIONER);
    await waitReady("triggers.eventing.knative.dev", PLAYER);
    // With OIDC on, the broker ingress wants a token for its own audience, from a sender in its namespace.
    const brokerAudience = kubectl("get", "brokers.eventing.knative.dev", "default", "-n", SERVICE_NS, "-o", "jsonpath={.status.address.audience}");
    assert.ok(brokerAudience, "the Broker publishes an audience");
    const admin = await adminClient();
    await admin.performRequest({ method: "POST", path: `/api/v1/namespaces/${SERVICE_NS}/serviceaccounts`, body: { metadata: { name: SENDER } } });
    brokerToken = (await admin.performRequest<{ status: { token: string } }>({
      method: "POST",
      path: `/api/v1/namespaces/${SERVICE_NS}/serviceaccounts/${SENDER}/token`,
      body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { audiences: [brokerAudience], expirationSeconds: 600 } },
    })).status.token;
    await awaitDelivery(sink, brokerToken);
  });

  after(async () => {
    await service?.stop();
    await sink?.stop();
    try {
      kubectl("delete", "clusterrolebinding", DELEGATOR, "--ignore-not-found");
    } finally {
      setOidc("disabled");
      removeDeploy();
    }
  });

  test("an event through the broker carries the Trigger's token and is provisioned", async () => {
    const id = `kn-oidc-${run}`;
    // the ingress verifier may still be loading the new config-features: retry its 401 for a while
    await waitFor("the broker ingress to accept the sender's token", async () => {
      const response = await sendToBroker({ id, source: "/e2e/oidc", type: "io.podgateway.client.pending", data: { gateway_name: "foo" } }, brokerToken);
      return response.status === 202;
    }, 30_000);
    let result: { type: string; pod?: string } | undefined;
    await waitFor("the result at the sink", async () => {
      const e = (await sink.events()).find((e) => e.ContextAttributes.Extensions?.causationid === id);
      if (e) result = { type: e.ContextAttributes.type, pod: e.ContextAttributes.subject };
      return e !== undefined;
    }, 60_000);
    assert.equal(result!.type, "io.podgateway.client.scheduling.done");
    const pod = await getPodOrNull(CLIENT_NS, result!.pod!);
    assert.ok(pod);
    assert.deepEqual(routedBy(pod), ["foo"]);
    assert.ok(service.logs.every((l) => !JSON.stringify(l).includes("eyJ")), "no token in the logs");
  });

  test("a direct request without a token is 401; so is the broker without one", async () => {
    const direct = await fetch(service.url, {
      method: "POST",
      headers: { "ce-specversion": "1.0", "ce-id": `kn-oidc-direct-${run}`, "ce-source": "/e2e/oidc", "ce-type": "io.podgateway.client.pending", "content-type": "application/json" },
      body: JSON.stringify({ gateway_name: "foo" }),
    });
    assert.equal(direct.status, 401, await direct.text());
    const viaBroker = await sendToBroker({ id: `kn-oidc-anon-${run}`, source: "/e2e/oidc", type: "io.podgateway.client.pending", data: { gateway_name: "foo" } });
    assert.equal(viaBroker.status, 401, await viaBroker.text());
  });
});
