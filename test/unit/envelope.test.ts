import assert from "node:assert/strict";
import { test } from "node:test";
import { binaryMessage, checkBinary, checkStructured, decodeHeaderValue, encodeHeaderValue } from "../../src/events/envelope.ts";

const base = { specversion: "1.0", id: "1", source: "/s", type: "t" };

test("header values are percent-encoded as the HTTP binding says, and decoded back", () => {
  assert.equal(encodeHeaderValue("plain-/:value"), "plain-/:value");
  assert.equal(encodeHeaderValue('a b"c%d'), "a%20b%22c%25d");
  assert.equal(encodeHeaderValue("é\n😀"), "%C3%A9%0A%F0%9F%98%80");
  for (const value of ["a\nb", "事件", "/fuzz/😀", "100%", 'q"uote']) {
    assert.equal(decodeHeaderValue(encodeHeaderValue(value)), value);
  }
  assert.equal(decodeHeaderValue("bad%zz"), "bad%zz");
});

test("structured events need the required attributes and well-formed extensions", () => {
  assert.equal(checkStructured({ ...base, data: {}, ext1: "x", n: 3, b: true }), undefined);
  assert.match(checkStructured([]) ?? "", /JSON object/);
  assert.match(checkStructured({ ...base, id: undefined }) ?? "", /required attribute id is missing/);
  assert.match(checkStructured({ ...base, id: "" }) ?? "", /id must not be empty/);
  assert.match(checkStructured({ ...base, specversion: "2.0" }) ?? "", /specversion must be 1.0 or 0.3/);
  assert.match(checkStructured({ ...base, Bad: "x" }) ?? "", /attribute name "Bad"/);
  assert.match(checkStructured({ ...base, ext: { a: 1 } }) ?? "", /attribute ext must be a string/);
});

test("binary events need the required ce- headers and valid extension names", () => {
  assert.equal(checkBinary({ ...base, traceparent: "00-1" }), undefined);
  assert.match(checkBinary({ ...base, source: undefined } as unknown as Record<string, string>) ?? "", /required attribute ce-source is missing/);
  assert.match(checkBinary({ ...base, bad_name: "x" }) ?? "", /ce-bad_name/);
});

test("an event in binary mode: a ce- header per attribute, percent-encoded; the data as the JSON body", () => {
  const message = binaryMessage({
    ...base, datacontenttype: "application/json", subject: "pod-1", causationid: "ü id", partitionkey: undefined, data: { pod_name: "pod-1", message: "é" },
  } as Parameters<typeof binaryMessage>[0]);
  assert.deepEqual(message.headers, {
    "content-type": "application/json",
    "ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t", "ce-subject": "pod-1", "ce-causationid": "%C3%BC%20id",
  });
  assert.deepEqual(JSON.parse(message.body), { pod_name: "pod-1", message: "é" });
  assert.equal(binaryMessage(base as Parameters<typeof binaryMessage>[0]).body, "");
});
