/**
 * Knative OIDC sender identity, with real service-account tokens from the local API server: only a token
 * for our audience from a listed sender gets in; everything else is 401/403, creates nothing, and no token
 * ever reaches the logs.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { CloudEvent, HTTP } from "cloudevents";
import { adminClient, listPods, routedNamespace, serviceAccountToken } from "../support/cluster.ts";
import { replyEvent } from "../support/received.ts";
import { type RunningService, startService } from "../support/service.ts";

const AUDIENCE = "podgateway-provisioner.e2e";

async function tokenFor(namespace: string, account: string, audience: string): Promise<string> {
  const kube = await adminClient();
  await kube.performRequest({
    method: "POST",
    path: `/api/v1/namespaces/${namespace}/serviceaccounts`,
    body: { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: account } },
  }).catch(() => {});
  return await serviceAccountToken(namespace, account, audience);
}

describe("sender authentication (Knative OIDC)", () => {
  let service: RunningService;
  let namespace: Awaited<ReturnType<typeof routedNamespace>>;
  let sender: string;

  before(async () => {
    namespace = await routedNamespace("e2e-auth");
    sender = `system:serviceaccount:${namespace.name}:broker-sender`;
    service = await startService({ CLIENT_NAMESPACE: namespace.name, OIDC_AUDIENCE: AUDIENCE, ALLOWED_SENDERS: sender });
  });
  after(async () => {
    await service?.stop();
    await namespace?.remove();
  });

  const send = async (id: string, token?: string) => {
    const message = HTTP.binary(new CloudEvent({ id, source: "/e2e/auth", type: "io.podgateway.client.pending", data: { gateway_name: "foo" } }));
    const headers = { ...(message.headers as Record<string, string>), ...(token ? { authorization: `Bearer ${token}` } : {}) };
    const response = await fetch(service.url, { method: "POST", headers, body: message.body as string });
    const body = await response.text();
    return { status: response.status, type: replyEvent(Object.fromEntries(response.headers), body)?.type ?? null, body };
  };

  test("the listed sender with a token for our audience provisions a pod", async () => {
    const token = await tokenFor(namespace.name, "broker-sender", AUDIENCE);
    const reply = await send("auth-ok-1", token);
    assert.equal(reply.status, 200, reply.body);
    assert.equal(reply.type, "io.podgateway.client.scheduling.done");
    assert.ok(!service.output().includes(token), "the token never appears in the service's output");
  });

  test("no token, a token for another audience, a forged token, an unlisted sender: refused, nothing created", async () => {
    const before = (await listPods(namespace.name)).length;
    const otherAudience = await tokenFor(namespace.name, "broker-sender", "someone-else");
    const unlisted = await tokenFor(namespace.name, "intruder", AUDIENCE);
    const cases: [string, string | undefined, number][] = [
      ["auth-none", undefined, 401],
      ["auth-audience", otherAudience, 401],
      ["auth-forged", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", 401],
      ["auth-unlisted", unlisted, 403],
    ];
    for (const [id, token, status] of cases) {
      const reply = await send(id, token);
      assert.equal(reply.status, status, `${id}: ${reply.body}`);
      assert.equal(reply.type, null, `${id}: no result event`);
    }
    assert.equal((await listPods(namespace.name)).length, before);
    for (const token of [otherAudience, unlisted]) assert.ok(!service.output().includes(token));
  });
});
