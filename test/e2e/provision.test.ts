/**
 * The product end to end on the local cluster, with the foo and bar pod-gateway webhooks: real CloudEvents
 * senders (curl with ce-* headers, the cloudevents SDK in binary and structured mode) → the service process
 * (on the runtime running this file) → routed client pods and result events.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { CloudEvent, type CloudEventV1, HTTP } from "cloudevents";
import { getPodOrNull, listPods, routedBy, routedNamespace, waitFor } from "../support/cluster.ts";
import { replyEvent } from "../support/received.ts";
import { type RunningService, startService } from "../support/service.ts";

const PENDING = "io.podgateway.client.pending";
const run = promisify(execFile);

type Reply = { status: number; event?: CloudEventV1<Record<string, string>>; body: string };

/** Sends with the cloudevents SDK's HTTP binding and reads the reply with it too. */
async function sendWithSdk(url: string, event: CloudEvent<unknown>, mode: "binary" | "structured" = "binary"): Promise<Reply> {
  const message = mode === "binary" ? HTTP.binary(event) : HTTP.structured(event);
  const response = await fetch(url, { method: "POST", headers: message.headers as Record<string, string>, body: message.body as string });
  return readReply(response.status, Object.fromEntries(response.headers), await response.text());
}

/** Sends the way a person does from a shell. */
async function sendWithCurl(url: string, id: string, data: string): Promise<Reply> {
  const { stdout } = await run("curl", [
    "-sS", "-i", url,
    "-H", "ce-specversion: 1.0", "-H", `ce-id: ${id}`, "-H", "ce-source: /e2e/curl", "-H", `ce-type: ${PENDING}`,
    "-H", "content-type: application/json", "-d", data,
  ]);
  const [head, ...rest] = stdout.split("\r\n\r\n");
  const [statusLine, ...headerLines] = head!.split("\r\n");
  const headers = Object.fromEntries(headerLines.map((line) => {
    const at = line.indexOf(":");
    return [line.slice(0, at).toLowerCase(), line.slice(at + 1).trim()];
  }));
  return readReply(Number(statusLine!.split(" ")[1]), headers, rest.join("\r\n\r\n"));
}

function readReply(status: number, headers: Record<string, string>, body: string): Reply {
  return { status, body, event: replyEvent(headers, body) };
}

const pending = (id: string, gateway: unknown, source = "/e2e/sdk") =>
  new CloudEvent({ id, source, type: PENDING, data: { gateway_name: gateway } });

describe("provisioning on the local cluster", () => {
  let service: RunningService;
  let namespace: Awaited<ReturnType<typeof routedNamespace>>;

  before(async () => {
    namespace = await routedNamespace("e2e-provision");
    service = await startService({ CLIENT_NAMESPACE: namespace.name });
  });
  after(async () => {
    await service?.stop();
    await namespace?.remove();
  });

  test("curl: a foo request gives a pod routed by foo only, running on a kwok node", async () => {
    const reply = await sendWithCurl(service.url, "curl-foo-1", '{"gateway_name":"foo"}');
    assert.equal(reply.status, 200, reply.body);
    assert.equal(reply.event?.type, "io.podgateway.client.scheduling.done");
    const { pod_name, namespace: ns, gateway_name } = reply.event!.data!;
    assert.equal(ns, namespace.name);
    assert.equal(gateway_name, "foo");
    assert.equal(reply.event?.subject, pod_name);
    assert.equal(reply.event?.causationid, "curl-foo-1");
    assert.equal(reply.event?.causationsource, "/e2e/curl");

    const pod = await getPodOrNull(namespace.name, pod_name!);
    assert.ok(pod, "the pod exists");
    assert.deepEqual(routedBy(pod), ["foo"]);
    assert.ok(pod.spec?.containers.some((container) => container.name === "gateway-sidecar"), "foo's sidecar");
    assert.deepEqual(pod.spec?.schedulingGates ?? [], [], "the routing gate is released");
    assert.equal(pod.metadata?.labels?.setGateway, "foo");
    await waitFor("the client pod to run on a kwok node", async () => {
      const current = await getPodOrNull(namespace.name, pod_name!);
      return current?.status?.phase === "Running" && Boolean(current.spec?.nodeName);
    });
  });

  test("SDK binary mode: a bar request gives a pod routed by bar only", async () => {
    const reply = await sendWithSdk(service.url, pending("sdk-bar-1", "bar"));
    assert.equal(reply.status, 200, reply.body);
    assert.equal(reply.event?.type, "io.podgateway.client.scheduling.done");
    const pod = await getPodOrNull(namespace.name, reply.event!.data!.pod_name!);
    assert.deepEqual(routedBy(pod!), ["bar"]);
  });

  test("SDK structured mode, CloudEvents 0.3 too", async () => {
    const v1 = await sendWithSdk(service.url, pending("sdk-structured-1", "foo"), "structured");
    assert.equal(v1.event?.type, "io.podgateway.client.scheduling.done", v1.body);
    const v03 = await sendWithSdk(service.url, new CloudEvent({ ...pending("sdk-v03-1", "bar"), specversion: "0.3" }), "structured");
    assert.equal(v03.event?.type, "io.podgateway.client.scheduling.done", v03.body);
    assert.deepEqual(routedBy((await getPodOrNull(namespace.name, v03.event!.data!.pod_name!))!), ["bar"]);
  });

  test("an unknown gateway gives a failed event and leaves no pod", async () => {
    const reply = await sendWithSdk(service.url, pending("unknown-1", "baz"));
    assert.equal(reply.status, 200, reply.body);
    assert.equal(reply.event?.type, "io.podgateway.client.scheduling.failed");
    assert.equal(reply.event?.data?.reason, "GatewayNotRouted");
    assert.match(reply.event?.data?.message ?? "", /no pod-gateway routed setGateway=baz/);
    assert.equal(reply.event?.data?.gateway_name, "baz");
    assert.equal(await getPodOrNull(namespace.name, reply.event!.subject!), null);
    const leftovers = (await listPods(namespace.name, "setGateway=baz"));
    assert.deepEqual(leftovers.map((pod) => pod.metadata?.name), []);
  });

  test("invalid data gives a failed event naming the field and the rule, and no pod", async () => {
    const before = (await listPods(namespace.name)).length;
    const reply = await sendWithCurl(service.url, "invalid-1", '{"gateway_name":"-not a label-"}');
    assert.equal(reply.status, 200, reply.body);
    assert.equal(reply.event?.type, "io.podgateway.client.scheduling.failed");
    assert.equal(reply.event?.data?.reason, "InvalidEventData");
    assert.match(reply.event?.data?.message ?? "", /data\.gateway_name must be a Kubernetes label value/);
    assert.equal((await listPods(namespace.name)).length, before);
  });

  test("a namespace the webhooks do not watch is never routed: failed, no pod", async () => {
    const unrouted = await routedNamespace("e2e-unrouted", false);
    const other = await startService({ CLIENT_NAMESPACE: unrouted.name });
    try {
      const reply = await sendWithSdk(other.url, pending("unrouted-1", "foo"));
      assert.equal(reply.event?.data?.reason, "GatewayNotRouted", reply.body);
      assert.deepEqual(await listPods(unrouted.name), []);
    } finally {
      await other.stop();
      await unrouted.remove();
    }
  });

  test("a missing client namespace is a permanent failure", async () => {
    const other = await startService({ CLIENT_NAMESPACE: "does-not-exist" });
    try {
      const reply = await sendWithSdk(other.url, pending("missing-ns-1", "foo"));
      assert.equal(reply.status, 200, reply.body);
      assert.equal(reply.event?.data?.reason, "PodRejected");
      assert.match(reply.event?.data?.message ?? "", /not found/);
    } finally {
      await other.stop();
    }
  });

  test("one JSON log line per event, with id, gateway, pod, outcome and duration", () => {
    const line = service.logs.find((record) => record.msg === "event" && record.id === "sdk-bar-1");
    assert.ok(line, "logged");
    assert.equal(line.gateway, "bar");
    assert.equal(line.outcome, "done");
    assert.equal(typeof line.ms, "number");
    assert.match(String(line.pod), /^pgw-client-/);
  });

  test("metrics count events by type and outcome, and time provisioning", async () => {
    const text = await (await fetch(`${service.url}/metrics`)).text();
    assert.match(text, /podgateway_events_total\{type="io.podgateway.client.pending",outcome="done"\} \d+/);
    assert.match(text, /podgateway_provisioning_seconds_count [1-9]/);
    assert.equal((await fetch(`${service.url}/readyz`)).status, 200);
  });
});
