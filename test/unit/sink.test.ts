/** K_SINK delivery: the OIDC token a SinkBinding mounts goes along as a Bearer token, read for every send. */
import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { CloudEvent } from "cloudevents";
import { httpSink } from "../../src/events/sink.ts";

test("httpSink sends the current token as Authorization: Bearer, and none when there is none", async () => {
  const seen: IncomingHttpHeaders[] = [];
  const server = createServer((req, res) => {
    seen.push(req.headers);
    res.writeHead(req.headers.authorization === "Bearer t2" ? 401 : 202).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const tokens = ["t1", "t2", undefined];
    const sink = httpSink(url, { attempts: 1, token: async () => tokens.shift() });
    const event = new CloudEvent({ id: "1", source: "/test", type: "io.podgateway.client.ready", data: {} });
    await sink.send(event);
    await assert.rejects(sink.send(event), /HTTP 401/);
    await sink.send(event);
    assert.deepEqual(seen.map((h) => h.authorization), ["Bearer t1", "Bearer t2", undefined]);
    await httpSink(url, { attempts: 1 }).send(event);
    assert.equal(seen.at(-1)!.authorization, undefined);
  } finally {
    server.close();
  }
});

test("httpSink asks holds() before every attempt: once it says no (a leader's term ran out), no further attempt goes out", async () => {
  let requests = 0;
  const server = createServer((_req, res) => {
    requests++;
    res.writeHead(503).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const event = new CloudEvent({ id: "1", source: "/test", type: "io.podgateway.client.ready", data: {} });
    let allowed = 2;
    await assert.rejects(httpSink(url, { attempts: 5, backoffMs: 1 }).send(event, undefined, () => allowed-- > 0), { name: "AbortError" });
    assert.equal(requests, 2, "two attempts while it held, none after");
  } finally {
    server.close();
  }
});
