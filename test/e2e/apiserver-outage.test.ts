/**
 * Transient trouble is the sender's to retry: with the API server stopped the service answers 5xx (never a
 * failed event, never a lost request); once it is back, the same event succeeds. Also: clean SIGTERM.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { CloudEvent, HTTP } from "cloudevents";
import { cluster, getPodOrNull, routedNamespace, waitFor } from "../support/cluster.ts";
import { type RunningService, startService } from "../support/service.ts";

async function send(url: string, id: string) {
  const message = HTTP.binary(new CloudEvent({ id, source: "/e2e/outage", type: "io.podgateway.client.pending", data: { gateway_name: "foo" } }));
  const response = await fetch(url, { method: "POST", headers: message.headers as Record<string, string>, body: message.body as string });
  return { status: response.status, headers: response.headers, body: await response.text() };
}

describe("API server outage and shutdown", () => {
  let service: RunningService;
  let namespace: Awaited<ReturnType<typeof routedNamespace>>;

  before(async () => {
    namespace = await routedNamespace("e2e-outage");
    service = await startService({ CLIENT_NAMESPACE: namespace.name, KUBE_TIMEOUT_MS: "2000" });
  });
  after(async () => {
    cluster("start", "apiserver");
    await service?.stop();
    await namespace?.remove();
  });

  test("API server stopped: 503 and no failed event; started again: the same event succeeds", async () => {
    cluster("stop", "apiserver");
    try {
      const down = await send(service.url, "outage-1");
      assert.equal(down.status, 503, down.body);
      assert.equal(down.headers.get("ce-type"), null, "no result event while Kubernetes is unreachable");
      assert.match(JSON.parse(down.body).error, /retry later/);
      // Readiness is this process's, not the API server's: Knative keeps routing here, and each event gets its 503.
      for (let probe = 0; probe < 3; probe++) {
        assert.equal((await fetch(`${service.url}/readyz`)).status, 200, "ready during the API server's outage");
        await new Promise((resolve) => setTimeout(resolve, 600));
      }
    } finally {
      cluster("start", "apiserver");
    }
    await waitFor("the API server to answer", async () => (await send(service.url, "outage-1")).status !== 503, 60_000);
    const up = await send(service.url, "outage-1");
    assert.equal(up.status, 200, up.body);
    assert.equal(up.headers.get("ce-type"), "io.podgateway.client.scheduling.done");
    const pod = await getPodOrNull(namespace.name, JSON.parse(up.body).pod_name);
    assert.ok(pod?.spec?.initContainers?.some((container) => container.name === "gateway-init"));
  });

  test("SIGTERM: in-flight requests are answered, then the process exits 0", async () => {
    const inFlight = Array.from({ length: 5 }, (_, index) => send(service.url, `sigterm-${index}`));
    await new Promise((resolve) => setTimeout(resolve, 20));
    const exit = service.stop("SIGTERM");
    const answers = await Promise.all(inFlight);
    for (const answer of answers) assert.equal(answer.status, 200, answer.body);
    assert.equal(await exit, 0);
    assert.ok(service.logs.some((record) => record.msg === "stopped"));
  });
});
