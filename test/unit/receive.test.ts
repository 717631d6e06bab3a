import assert from "node:assert/strict";
import { test } from "node:test";
import { CloudEvent, HTTP } from "cloudevents";
import { receiveEvent, UnreadableRequest } from "../../src/events/receive.ts";

const event = new CloudEvent({ id: "1", source: "/s", type: "io.podgateway.client.pending", data: { gateway_name: "foo" } });
const post = (headers: Record<string, string>, body: string) =>
  new Request("http://x/", { method: "POST", headers, body });

test("reads binary and structured mode, CloudEvents 1.0 and 0.3", async () => {
  const binary = HTTP.binary(event);
  const b = await receiveEvent(post(binary.headers as Record<string, string>, binary.body as string));
  assert.deepEqual([b.id, b.source, b.type, b.data], ["1", "/s", event.type, { gateway_name: "foo" }]);

  const structured = HTTP.structured(event);
  const s = await receiveEvent(post(structured.headers as Record<string, string>, structured.body as string));
  assert.deepEqual(s.data, { gateway_name: "foo" });

  const v03 = HTTP.binary(new CloudEvent({ ...event, specversion: "0.3" }));
  assert.equal((await receiveEvent(post(v03.headers as Record<string, string>, v03.body as string))).specversion, "0.3");
});

test("refuses batches, non-events and unknown structured formats with a 4xx", async () => {
  const expect = async (request: Request, status: number, message: RegExp) => {
    await assert.rejects(receiveEvent(request), (error: unknown) => {
      assert.ok(error instanceof UnreadableRequest);
      assert.equal(error.status, status);
      assert.match(error.message, message);
      return true;
    });
  };
  await expect(post({ "content-type": "application/cloudevents-batch+json" }, "[]"), 415, /batched mode/);
  await expect(post({ "content-type": "application/json" }, "{}"), 400, /not a CloudEvent/);
  await expect(post({ "content-type": "application/cloudevents+xml" }, "<e/>"), 415, /only application\/cloudevents\+json/);
  await expect(post({ "content-type": "application/cloudevents+json" }, "{not json"), 400, /invalid CloudEvent/);
  await expect(post({ "ce-specversion": "1.0", "ce-type": "t", "ce-source": "/s" }, ""), 400, /invalid CloudEvent/);
});
