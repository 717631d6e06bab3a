/**
 * Bad input on the real service and cluster, where a mistake would cost a pod: label-invalid, over-long and
 * non-ASCII gateway names, hostile or oversized CloudEvent attributes, malformed events, and a reused event id.
 * Each gets a clear documented answer (a 4xx naming the problem, or a failed event), and no client pod.
 */
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { CloudEvent, HTTP } from "cloudevents";
import { listPods } from "../support/cluster.ts";
import { attempt, DONE, FAILED, pendingMessage } from "../support/knative-sender.ts";
import { replyEvent } from "../support/received.ts";
import { type RunningService, startService } from "../support/service.ts";
import { serviceRuntime } from "../support/runtime.ts";
import { faultFrame } from "../support/fault.ts";

type Reply = { status: number; headers: Record<string, string>; body: string; type?: string; data?: Record<string, string> };

describe(`hostile input on the real service (${serviceRuntime})`, () => {
  let service: RunningService;

  const fault = faultFrame("e2e-hostile", {
    watch: false,
    cleanup: async () => {
      await service?.stop();
    },
  });

  before(async () => {
    service = await startService({ CLIENT_NAMESPACE: fault.namespace.name });
  });

  const post = async (headers: Record<string, string>, body: string): Promise<Reply> => {
    const response = await fetch(service.url, { method: "POST", headers, body });
    const text = await response.text();
    const reply: Reply = { status: response.status, headers: Object.fromEntries(response.headers), body: text };
    const event = replyEvent(reply.headers, text);
    if (event) {
      reply.type = event.type;
      reply.data = event.data;
    }
    return reply;
  };
  const binary = (extra: Record<string, string>, data: unknown, id: string, source = "/e2e/hostile") =>
    post({ "ce-specversion": "1.0", "ce-id": id, "ce-source": source, "ce-type": "io.podgateway.client.pending", "content-type": "application/json", ...extra }, JSON.stringify(data));
  const structured = (event: Record<string, unknown>) => post({ "content-type": "application/cloudevents+json" }, JSON.stringify(event));
  /** Pods made for events from `source` (each test sends from a source of its own). */
  const podCount = async (source = "/e2e/hostile") =>
    (await listPods(fault.namespace.name)).filter((pod) => pod.metadata?.annotations?.["podgateway.io/request-source"] === source).length;
  /** A 4xx with a JSON error, or a failed event: never 5xx, never done. */
  const assertClearRefusal = (reply: Reply, what: string) => {
    assert.ok(reply.status < 500, `${what}: not a server error: ${reply.status} ${reply.body}`);
    if (reply.status === 200) {
      assert.equal(reply.type, FAILED, `${what}: ${reply.body}`);
      assert.ok(reply.data?.reason && reply.data?.message, `${what}: a reason and a message`);
    } else {
      assert.ok(reply.status >= 400, `${what}: refused, not ${reply.status}`);
      if (reply.status !== 431 && reply.body) assert.ok(JSON.parse(reply.body).error, `${what}: an error message`);
    }
  };

  const invalidNames: [string, unknown][] = [
    ["leading dash", "-foo"],
    ["trailing dot", "foo."],
    ["space", "foo bar"],
    ["slash", "foo/bar"],
    ["newline", "foo\n"],
    ["empty", ""],
    ["64 characters", "a".repeat(64)],
    ["10,000 characters", "f".repeat(10_000)],
    ["latin-1", "föö"],
    ["CJK", "网关"],
    ["zero-width space", "foo\u200b"],
    ["fullwidth letters", "ｆｏｏ"],
    ["emoji", "foo😀"],
    ["RTL override", "\u202efoo"],
    ["null", null],
    ["number", 42],
    ["array", ["foo"]],
    ["object", { name: "foo" }],
  ];
  test(`${invalidNames.length} invalid gateway names: failed InvalidEventData naming the field and rule, no pod`, async () => {
    for (const [what, name] of invalidNames) {
      const reply = await structured({ specversion: "1.0", id: `bad-name-${what}`, source: "/e2e/hostile", type: "io.podgateway.client.pending", data: { gateway_name: name } });
      assert.equal(reply.status, 200, `${what}: ${reply.body}`);
      assert.equal(reply.type, FAILED, `${what}: ${reply.body}`);
      assert.equal(reply.data?.reason, "InvalidEventData", what);
      assert.match(reply.data?.message ?? "", /^data\.gateway_name /, `${what}: names the field`);
    }
    for (const [what, data] of [["no gateway_name", {}], ["data a string", "foo"], ["data null", null], ["message too long", { gateway_name: "foo", message: "m".repeat(1025) }]] as const) {
      const reply = await binary({}, data, `bad-data-${what}`);
      assert.equal(reply.status, 200, `${what}: ${reply.body}`);
      assert.equal(reply.data?.reason, "InvalidEventData", `${what}: ${reply.body}`);
    }
    assert.equal(await podCount(), 0, "no pod");
  });

  test("a 63-character name is a valid label: it is tried, and answered GatewayNotRouted", async () => {
    const reply = await binary({}, { gateway_name: "a".repeat(63) }, "name-63", "/e2e/hostile/63");
    assert.equal(reply.data?.reason, "GatewayNotRouted", reply.body);
    assert.equal(await podCount("/e2e/hostile/63"), 0);
  });

  // Hostile attributes on an otherwise valid foo event: if they were let through, a pod would be created.
  test("invalid extension name (binary ce-bad_name): 400 naming it, no pod", async () => {
    const reply = await binary({ "ce-bad_name": "x" }, { gateway_name: "foo" }, "ext-bad-name", "/e2e/hostile/ext-name");
    assert.equal(await podCount("/e2e/hostile/ext-name"), 0, `no pod (answer ${reply.status} ${reply.body.slice(0, 120)})`);
    assert.equal(reply.status, 400, reply.body);
    assert.match(JSON.parse(reply.body).error, /extension|attribute/i);
  });

  test("invalid extension name and value in structured mode: 400, no pod", async () => {
    for (const [what, extra] of [["upper-case name", { "Bad-Name": "x" }], ["object value", { ext: { nested: true } }]] as const) {
      const reply = await structured({ specversion: "1.0", id: `ext-structured-${what}`, source: "/e2e/hostile/ext-structured", type: "io.podgateway.client.pending", ...extra, data: { gateway_name: "foo" } });
      assert.equal(reply.status, 400, `${what}: ${reply.body}`);
    }
    assert.equal(await podCount("/e2e/hostile/ext-structured"), 0);
  });

  test("a 64 KiB extension header: a clear 4xx, no pod", async () => {
    const reply = await binary({ "ce-huge": "v".repeat(64 * 1024) }, { gateway_name: "foo" }, "ext-huge", "/e2e/hostile/huge").catch((error) => ({ status: 0, headers: {}, body: String(error) }) as Reply);
    assert.equal(await podCount("/e2e/hostile/huge"), 0, `no pod (answer ${reply.status})`);
    assert.ok([400, 413, 431].includes(reply.status), `status ${reply.status}: ${reply.body.slice(0, 200)}`);
  });

  test("a body over 1 MiB: 413, no pod", async () => {
    const event = { specversion: "1.0", id: "big-body", source: "/e2e/hostile/big", type: "io.podgateway.client.pending", pad: "p".repeat(1024 * 1024), data: { gateway_name: "foo" } };
    // A connection of its own: see the next test for what happens to a kept-alive one.
    const { answer } = await attempt(service.url, { id: "big-body", headers: { "content-type": "application/cloudevents+json" }, body: JSON.stringify(event) }, { timeoutMs: 30_000, transport: "fresh" });
    assert.equal(answer?.status, 413, answer?.body);
    assert.match(JSON.parse(answer!.body).error, /larger than 1048576 bytes/);
    assert.equal(await podCount("/e2e/hostile/big"), 0);
  });

  test("after a 413 the sender's kept-alive connection is not left to die under its next request", async () => {
    // The 413 is sent before the body is read; if the server then drops the connection, it must say
    // `Connection: close`, or the sender reuses it and its next event fails with a connection error.
    const big = await post({ "content-type": "application/cloudevents+json" }, "x".repeat(1024 * 1024 + 10));
    assert.equal(big.status, 413);
    for (let i = 0; i < 5; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      const next = await binary({}, { gateway_name: "not a label" }, `after-413-${i}`, "/e2e/hostile/after-413")
        .catch((error) => ({ status: 0, headers: {}, body: `${error} ${(error as Error).cause}` }) as Reply);
      assert.equal(next.status, 200, `request ${i + 1} after a 413 on the same connection: ${next.body}; the 413 said connection: ${big.headers.connection}`);
    }
  });

  test("a refusal sent before a large body was read (400, 415) does not leave the sender's connection to die either", async () => {
    const problems: string[] = [];
    for (const [what, headers] of [["400 not a CloudEvent", { "content-type": "text/plain" }], ["415 structured XML", { "content-type": "application/cloudevents+xml" }]] as const) {
      const refused = await post(headers, "z".repeat(700_000));
      for (let i = 0; i < 3; i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        const next = await binary({}, { gateway_name: "not a label" }, `after-${refused.status}-${i}`, "/e2e/hostile/after-refusal")
          .catch((error) => ({ status: 0, headers: {}, body: `${error} ${(error as Error).cause}` }) as Reply);
        if (next.status !== 200) problems.push(`${what} (connection: ${refused.headers.connection}), request ${i + 1} after it: ${next.body.slice(0, 120)}`);
      }
    }
    assert.deepEqual(problems, []);
  });

  test("malformed events with a valid foo gateway: 400, no pod", async () => {
    const cases: [string, Record<string, string>, string][] = [
      ["binary without ce-source", { "ce-specversion": "1.0", "ce-id": "m-1", "ce-type": "io.podgateway.client.pending", "content-type": "application/json" }, '{"gateway_name":"foo"}'],
      ["binary without ce-type", { "ce-specversion": "1.0", "ce-id": "m-2", "ce-source": "/e2e/hostile/malformed", "content-type": "application/json" }, '{"gateway_name":"foo"}'],
      ["binary specversion 2.0", { "ce-specversion": "2.0", "ce-id": "m-3", "ce-source": "/e2e/hostile/malformed", "ce-type": "io.podgateway.client.pending", "content-type": "application/json" }, '{"gateway_name":"foo"}'],
      ["structured without id", { "content-type": "application/cloudevents+json" }, JSON.stringify({ specversion: "1.0", source: "/e2e/hostile/malformed", type: "io.podgateway.client.pending", data: { gateway_name: "foo" } })],
      ["structured id a number", { "content-type": "application/cloudevents+json" }, JSON.stringify({ specversion: "1.0", id: 7, source: "/e2e/hostile/malformed", type: "io.podgateway.client.pending", data: { gateway_name: "foo" } })],
      ["structured a JSON array", { "content-type": "application/cloudevents+json" }, "[]"],
      ["structured a JSON string", { "content-type": "application/cloudevents+json" }, '"x"'],
    ];
    const problems: string[] = [];
    for (const [what, headers, body] of cases) {
      const reply = await post(headers, body);
      if (reply.status !== 400) problems.push(`${what}: ${reply.status} ${reply.headers["ce-type"] ?? ""} ${reply.body.slice(0, 120)}`);
    }
    const pods = (await listPods(fault.namespace.name)).filter((pod) => !pod.metadata?.annotations?.["podgateway.io/request-source"]?.startsWith("/e2e/hostile/") || pod.metadata?.annotations?.["podgateway.io/request-source"] === "/e2e/hostile/malformed");
    assert.deepEqual(problems, [], "every malformed event is answered 400");
    assert.equal(pods.length, 0, "no pod");
  });

  test("structured mode without an id, delivered twice: never two pods (the SDK must not invent an id)", async () => {
    const body = JSON.stringify({ specversion: "1.0", source: "/e2e/hostile/noid", type: "io.podgateway.client.pending", data: { gateway_name: "bar" } });
    const replies = [await post({ "content-type": "application/cloudevents+json" }, body), await post({ "content-type": "application/cloudevents+json" }, body)];
    const pods = (await listPods(fault.namespace.name)).filter((pod) => pod.metadata?.annotations?.["podgateway.io/request-source"] === "/e2e/hostile/noid");
    assert.ok(pods.length <= 1, `a redelivered id-less event made ${pods.length} pods; answers ${replies.map((r) => r.status)}`);
  });

  test("attributes that cannot be HTTP header values (newline, non-Latin-1): never a 5xx after the pod is made", async () => {
    for (const [what, id, source] of [["newline in id", "nl\nid", "/e2e/hostile/attr"], ["emoji in source", "emoji-1", "/e2e/hostile/😀"], ["CJK id", "事件-1", "/e2e/hostile/attr"]]) {
      const reply = await structured({ specversion: "1.0", id, source, type: "io.podgateway.client.pending", data: { gateway_name: "foo" } });
      assert.ok(reply.status < 500, `${what}: ${reply.status} ${reply.body}`);
      if (reply.status === 200) assert.equal(reply.type, DONE, `${what}: ${reply.body}`);
    }
  });

  test("an event id reused with another gateway is never answered done for a gateway that did not route the pod", async () => {
    const first = await binary({}, { gateway_name: "foo" }, "reused-id", "/e2e/hostile/reused");
    assert.equal(first.type, DONE, first.body);
    for (const other of ["bar", "baz"]) {
      const reply = await binary({}, { gateway_name: other }, "reused-id", "/e2e/hostile/reused");
      assertClearRefusal(reply, `same id, gateway ${other}`);
    }
  });

  test("the CloudEvents SDK's own structured and binary messages still work next to all this", async () => {
    const event = new CloudEvent({ id: "sdk-ok", source: "/e2e/hostile/sdk", type: "io.podgateway.client.pending", data: { gateway_name: "bar" } });
    for (const message of [HTTP.binary(event), HTTP.structured(event)]) {
      const reply = await post(message.headers as Record<string, string>, message.body as string);
      assert.equal(reply.type, DONE, reply.body);
    }
    const again = pendingMessage("sdk-ok", "bar", "/e2e/hostile/sdk");
    assert.equal((await post(again.headers, again.body)).type, DONE);
    assert.equal(await podCount("/e2e/hostile/sdk"), 1, "one pod for the three deliveries");
  });
});
