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

test("reads data once, as sent: JSON when the content type says so, base64 as bytes, anything else as text", async () => {
  const binary = (contentType: string, body: string) =>
    receiveEvent(post({ "ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t", "content-type": contentType }, body));
  assert.deepEqual((await binary("application/json; charset=utf-8", '{"a":1}')).data, { a: 1 });
  assert.equal((await binary("text/plain", "hi")).data, "hi");
  await assert.rejects(binary("application/json", "{nope"), /the event data is not valid JSON/);
  const structured = (event: object) => receiveEvent(post({ "content-type": "application/cloudevents+json" }, JSON.stringify(event)));
  const bytes = await structured({ specversion: "1.0", id: "1", source: "/s", type: "t", data_base64: btoa('{"a":1}') });
  assert.deepEqual([bytes.data, "data_base64" in bytes], [new TextEncoder().encode('{"a":1}'), false]);
  const v03 = await structured({ specversion: "0.3", id: "1", source: "/s", type: "t", datacontentencoding: "base64", data: btoa("x") });
  assert.deepEqual(v03.data, new TextEncoder().encode("x"));
});
