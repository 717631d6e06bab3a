/**
 * K_SINK: results reach the sink before the request is answered, except for senders that forward replies
 * themselves (`Prefer: reply`, as Knative brokers do); a sink that stays down makes the request retryable.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { CloudEvent, HTTP } from "cloudevents";
import { routedNamespace } from "../support/cluster.ts";
import { type EventReceiver, startReceiver } from "../support/event-receiver.ts";
import { type RunningService, startService } from "../support/service.ts";

describe("results delivered to K_SINK", () => {
  let service: RunningService;
  let sink: EventReceiver;
  let namespace: Awaited<ReturnType<typeof routedNamespace>>;

  before(async () => {
    namespace = await routedNamespace("e2e-sink");
    sink = await startReceiver();
    service = await startService({
      CLIENT_NAMESPACE: namespace.name,
      K_SINK: sink.url,
      K_CE_OVERRIDES: '{"extensions":{"team":"networking"}}',
    });
  });
  after(async () => {
    await service?.stop();
    await sink?.close();
    await namespace?.remove();
  });

  const send = async (id: string, headers: Record<string, string> = {}) => {
    const message = HTTP.binary(new CloudEvent({ id, source: "/e2e/sink", type: "io.podgateway.client.pending", data: { gateway_name: "foo" } }));
    const response = await fetch(service.url, { method: "POST", headers: { ...(message.headers as Record<string, string>), ...headers }, body: message.body as string });
    return { status: response.status, id: response.headers.get("ce-id") ?? undefined, body: await response.text() };
  };

  test("without Prefer: reply the result is in the reply and at the sink, with K_CE_OVERRIDES", async () => {
    const reply = await send("sink-1");
    assert.equal(reply.status, 200, reply.body);
    const delivered = sink.events.filter((event) => event.causationid === "sink-1");
    assert.equal(delivered.length, 1);
    assert.equal(delivered[0]!.id, reply.id);
    assert.equal(delivered[0]!.type, "io.podgateway.client.scheduling.done");
    assert.equal(delivered[0]!.team, "networking");
  });

  test("with Prefer: reply the broker forwards the reply, so the sink gets no copy", async () => {
    const reply = await send("sink-2", { prefer: "reply" });
    assert.equal(reply.status, 200, reply.body);
    assert.equal(sink.events.filter((event) => event.causationid === "sink-2").length, 0);
  });

  test("a sink that keeps failing makes the request retryable; redelivery then succeeds", async () => {
    sink.status = 503;
    const failed = await send("sink-3");
    assert.equal(failed.status, 503, failed.body);
    sink.status = 202;
    const retried = await send("sink-3");
    assert.equal(retried.status, 200, retried.body);
    // At least once, as Knative promises; any copy carries the same id, so consumers can drop it.
    const delivered = sink.events.filter((event) => event.causationid === "sink-3");
    assert.ok(delivered.length >= 1);
    for (const event of delivered) {
      assert.equal(event.type, "io.podgateway.client.scheduling.done");
      assert.equal(event.id, retried.id);
    }
  });
});
