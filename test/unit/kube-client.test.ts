/**
 * The REST client's own logic, with a recording `fetch`: how answers become values or errors, and how the
 * in-cluster transport authenticates. Talking to a real API server is tested in test/e2e.
 */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { isTransient, KubeApiError, KubeTransportError } from "../../src/kube/errors.ts";
import { HttpRestClient } from "../../src/kube/http-client.ts";
import { inClusterClient } from "../../src/kube/in-cluster.ts";
import type { Fetcher, TlsOptions } from "../../src/kube/rest-client.ts";

type Seen = { url: string; init: RequestInit };
const recording = (answer: (seen: Seen) => Response | Promise<Response>) => {
  const seen: Seen[] = [];
  const fetcher: Fetcher = (url, init) => {
    seen.push({ url, init });
    return Promise.resolve(answer({ url, init }));
  };
  return { seen, fetcher };
};

test("requests carry the path, query, JSON body, content type and bearer token", async () => {
  const { seen, fetcher } = recording(() => Response.json({ kind: "Pod" }, { status: 201 }));
  const client = new HttpRestClient({ server: "https://api:6443/", fetcher, token: () => "t0ken" });
  const pod = await client.performRequest({ method: "PATCH", path: "/api/v1/namespaces/n/pods/p", query: { fieldManager: "x", skip: undefined }, body: [{ op: "remove", path: "/a" }], contentType: "application/json-patch+json" });
  assert.deepEqual(pod, { kind: "Pod" });
  assert.equal(seen[0]!.url, "https://api:6443/api/v1/namespaces/n/pods/p?fieldManager=x");
  const headers = seen[0]!.init.headers as Record<string, string>;
  assert.equal(headers.authorization, "Bearer t0ken");
  assert.equal(headers["content-type"], "application/json-patch+json");
  assert.equal(seen[0]!.init.body, '[{"op":"remove","path":"/a"}]');
});

test("a Status answer becomes a KubeApiError with code, reason and Retry-After", async () => {
  const status = { kind: "Status", status: "Failure", message: "too many requests", reason: "TooManyRequests", code: 429 };
  const { fetcher } = recording(() => Response.json(status, { status: 429, headers: { "retry-after": "3" } }));
  const client = new HttpRestClient({ server: "https://api", fetcher });
  await assert.rejects(client.performRequest({ method: "GET", path: "/api/v1/pods" }), (error: unknown) => {
    assert.ok(error instanceof KubeApiError);
    assert.deepEqual([error.code, error.reason, error.message, error.retryAfterSeconds], [429, "TooManyRequests", "too many requests", 3]);
    assert.equal(isTransient(error), true);
    return true;
  });
});

test("a plain-text error answer keeps its text; 4xx are permanent, 5xx transient", async () => {
  for (const [code, transient] of [[403, false], [404, false], [422, false], [500, true], [503, true]] as const) {
    const { fetcher } = recording(() => new Response("upstream said no", { status: code }));
    const error = await new HttpRestClient({ server: "https://api", fetcher }).performRequest({ method: "GET", path: "/x" }).catch((e) => e);
    assert.ok(error instanceof KubeApiError);
    assert.equal(error.message, "upstream said no");
    assert.equal(isTransient(error), transient, String(code));
  }
});

test("connection failures and deadlines are transport errors, always transient", async () => {
  const refused = new HttpRestClient({ server: "https://api", fetcher: () => Promise.reject(new TypeError("fetch failed", { cause: new Error("connect ECONNREFUSED") })) });
  const error = await refused.performRequest({ method: "GET", path: "/readyz" }).catch((e) => e);
  assert.ok(error instanceof KubeTransportError);
  assert.match(error.message, /GET \/readyz: fetch failed: connect ECONNREFUSED/);
  assert.equal(isTransient(error), true);

  const hanging: Fetcher = (_url, init) => new Promise((_, reject) => init.signal?.addEventListener("abort", () => reject(init.signal?.reason)));
  const slow = new HttpRestClient({ server: "https://api", fetcher: hanging, timeoutMs: 50 });
  const started = performance.now();
  const timeout = await slow.performRequest({ method: "GET", path: "/slow" }).catch((e) => e);
  assert.ok(timeout instanceof KubeTransportError);
  assert.match(timeout.message, /timed out after 50 ms/);
  assert.ok(performance.now() - started < 1_000);
});

test("in cluster: the service account's CA and token, re-read when the kubelet rotates it", async () => {
  const dir = mkdtempSync(join(tmpdir(), "serviceaccount-"));
  writeFileSync(join(dir, "ca.crt"), "CA PEM");
  writeFileSync(join(dir, "token"), "first\n");
  let tls: TlsOptions | undefined;
  const { seen, fetcher } = recording(() => new Response("ok"));
  const client = await inClusterClient((options) => {
    tls = options;
    return fetcher;
  }, { dir, env: { KUBERNETES_SERVICE_HOST: "10.96.0.1", KUBERNETES_SERVICE_PORT: "443" }, tokenRefreshMs: 0 });
  assert.equal(client.server, "https://10.96.0.1:443");
  assert.deepEqual(tls, { ca: "CA PEM" });
  await client.performRequest({ method: "GET", path: "/readyz", expect: "text" });
  writeFileSync(join(dir, "token"), "rotated\n");
  await new Promise((resolve) => setTimeout(resolve, 5));
  await client.performRequest({ method: "GET", path: "/readyz", expect: "text" });
  assert.deepEqual(seen.map((s) => (s.init.headers as Record<string, string>).authorization), ["Bearer first", "Bearer rotated"]);
  await assert.rejects(inClusterClient(() => fetcher, { dir, env: {} }), /KUBERNETES_SERVICE_HOST is not set/);
});
