/**
 * The clients page's pure parts (event-stream parsing, ages, what each gateway's section shows), the page's
 * files as served, and `GET /clients/watch` through the app against the in-memory API server.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { ClientStatus } from "../../src/lifecycle/client-state.ts";
import { clientRoutes } from "../../src/lifecycle/status.ts";
import { formatAge, parseEvents, viewOf } from "../../src/ui/clients-browser.ts";
import { testApp } from "../support/app.ts";
import { FakeKube, testLifecycle } from "./lifecycle-fake-kube.ts";

test("parseEvents: complete events only, multi-line data joined, comments and data-less events dropped", () => {
  const { events, rest } = parseEvents("event: snapshot\ndata: {\"a\":1}\n\n: keepalive\n\ndata: x\ndata: y\n\nevent: upsert\ndata: {\"b\"");
  assert.deepEqual(events, [{ event: "snapshot", data: "{\"a\":1}" }, { event: "message", data: "x\ny" }]);
  assert.equal(rest, "event: upsert\ndata: {\"b\"");
  assert.deepEqual(parseEvents(rest + ":2}\n\n").events, [{ event: "upsert", data: "{\"b\":2}" }]);
  assert.deepEqual(parseEvents("event: ping\n\n"), { events: [], rest: "" });
});

test("formatAge as kubectl prints it", () => {
  assert.equal(formatAge(-5), "0s");
  assert.equal(formatAge(45_999), "45s");
  assert.equal(formatAge(12 * 60_000), "12m");
  assert.equal(formatAge(3 * 3_600_000), "3h");
  assert.equal(formatAge(3 * 3_600_000 + 5 * 60_000), "3h5m");
  assert.equal(formatAge(50 * 3_600_000), "2d2h");
});

const client = (pod_name: string, gateway: string | undefined, state: ClientStatus["state"], created: string, extra: Partial<ClientStatus> = {}): ClientStatus => ({
  pod_name,
  namespace: "ns",
  gateway_name: gateway,
  state,
  request: {},
  created_at: created,
  ...extra,
});

test("viewOf: a section per gateway by name (none last), newest first, counts by state, rows capped", () => {
  const now = Date.parse("2026-01-01T01:00:00Z");
  const views = viewOf([
    client("a", "foo", "ready", "2026-01-01T00:00:00Z", { phase: "Running", node_name: "n1" }),
    client("b", "foo", "pending", "2026-01-01T00:59:30Z", { phase: "Pending" }),
    client("c", "foo", "failed", "2026-01-01T00:30:00Z", { phase: "Failed", reason: "Evicted" }),
    client("d", undefined, "deleted", "2026-01-01T00:00:00Z"),
    client("e", "bar", "ready", "2026-01-01T00:00:00Z"),
  ], now, 2);
  assert.deepEqual(views.map((view) => view.gateway), ["bar", "foo", "(none)"]);
  const foo = views[1]!;
  assert.equal(foo.summary, "3 clients: 1 ready, 1 pending, 1 failed");
  assert.deepEqual(foo.rows.map((row) => [row.pod, row.state, row.phase, row.age, row.node]), [
    ["b", "pending", "Pending", "30s", ""],
    ["c", "failed (Evicted)", "Failed", "30m", ""],
  ]);
  assert.equal(foo.hidden, 1);
  assert.equal(views[0]!.summary, "1 client: 1 ready");
  assert.equal(views[2]!.rows[0]!.releasable, false, "a client being deleted has nothing to release");
  assert.deepEqual(viewOf([], now, 10), []);
});

function setup() {
  const kube = new FakeKube();
  const lifecycle = testLifecycle(kube);
  return { kube, app: testApp(kube, { lifecycle }) };
}

/** The server-sent events of a streaming response: `next(count)` reads until `count` more arrived. */
function eventsOf(response: Response) {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  const pending: { event: string; data: any }[] = [];
  return {
    async next(count: number) {
      while (pending.length < count) {
        const { value, done } = await reader.read();
        if (done) break;
        const parsed = parseEvents(buffer + value);
        buffer = parsed.rest;
        pending.push(...parsed.events.map(({ event, data }) => ({ event, data: JSON.parse(data) })));
      }
      return pending.splice(0, count);
    },
    close: () => reader.cancel(),
  };
}

test("GET /clients/watch: a snapshot of the gateway's clients, then upserts and removes as pods change", async () => {
  const { kube, app } = setup();
  kube.addPod("p-old", { createdAt: "2026-01-01T00:00:00Z" });
  kube.addPod("p-bar", { labels: { setGateway: "bar" } });
  const response = await app.fetch(new Request("http://x/clients/watch?gateway=foo"));
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/event-stream/);
  const stream = eventsOf(response);
  try {
    const [snapshot] = await stream.next(1);
    assert.equal(snapshot!.event, "snapshot");
    assert.deepEqual(snapshot!.data.clients.map((c: ClientStatus) => c.pod_name), ["p-old"]);


    kube.addPod("p-new");
    kube.addPod("p-other", { labels: { setGateway: "bar" } });
    kube.setStatus("p-new", {
      phase: "Running",
      conditions: [{ type: "Ready", status: "True" }],
      containerStatuses: [{ name: "gateway-sidecar", ready: true, restartCount: 0, image: "i", imageID: "", state: { running: {} } }],
    });
    await kube.performRequest({ method: "DELETE", path: "/api/v1/namespaces/ns/pods/p-old" });
    const changes = await stream.next(3);
    assert.deepEqual(changes.map((e) => `${e.event} ${e.data.pod_name}${e.data.state ? ` ${e.data.state}` : ""}`), [
      "upsert p-new pending",
      "upsert p-new ready",
      "remove p-old",
    ]);
    assert.equal(changes[1]!.data.phase, "Running");
  } finally {
    await stream.close();
  }
});

test("GET /clients/watch refuses a bad gateway (400); the page's files are served with a strict CSP", async () => {
  const { app } = setup();
  assert.equal((await app.fetch(new Request("http://x/clients/watch?gateway=no%20spaces"))).status, 400);
  const page = await app.fetch(new Request("http://x/ui/clients"));
  assert.equal(page.status, 200);
  assert.match(page.headers.get("content-security-policy") ?? "", /script-src 'self'/);
  const html = await page.text();
  for (const landmark of ["<main>", "<header>", 'role="status"', 'aria-live="polite"', '<label for="gateway">', '<label for="token">']) {
    assert.ok(html.includes(landmark), landmark);
  }
  const script = await (await app.fetch(new Request("http://x/ui/clients.js"))).text();
  assert.doesNotThrow(() => new Function(script), "the served script parses");
  assert.equal((await app.fetch(new Request("http://x/ui/clients.css"))).headers.get("content-type"), "text/css; charset=utf-8");
});

test("GET /clients/watch: at most maxStreams open at once (each holds a watch); a closed one frees its place", async () => {
  const kube = new FakeKube();
  const routes = clientRoutes({
    kube, namespace: "ns", log: () => {}, gatewayLabelKey: "setGateway", gatewayAnnotationKey: "setGateway",
    sidecarContainer: "gateway-sidecar", readyTimeoutMs: 0, maxStreams: 1,
  });
  const opened = eventsOf(await routes.fetch(new Request("http://x/watch")));
  await opened.next(1);
  const refused = await routes.fetch(new Request("http://x/watch"));
  assert.equal(refused.status, 429);
  assert.ok(refused.headers.get("retry-after"));
  await opened.close();
  let again: Response | undefined;
  for (let attempt = 0; attempt < 50 && again?.status !== 200; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    again = await routes.fetch(new Request("http://x/watch"));
  }
  assert.equal(again?.status, 200);
  await again!.body!.cancel();
});
