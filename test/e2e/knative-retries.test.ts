/**
 * Knative's retries meet the provisioner's status codes, through the real broker and deploy/'s Trigger as
 * shipped (20 retries, linear from 0.5 s, Retry-After honoured up to 10 s): events sent while the API server is stopped (~10 s; the
 * service answers 503) and a burst far beyond --max-in-flight (429) are all provisioned exactly once.
 *
 * Sizes: PGW_KNATIVE_OUTAGE_EVENTS (default 500) and PGW_KNATIVE_BURST_EVENTS (default 200).
 * Needs the local cluster with Knative (`npm run cluster -- up`); stops and restarts its API server.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { cluster, clusterKubeconfig, listPods, repo, waitFor } from "../support/cluster.ts";
import {
  CLIENT_NS,
  type Flow,
  sendToBroker,
  type Sink,
  startFlow,
  startProvisioner,
} from "../support/knative.ts";

const OUTAGE_EVENTS = Number(process.env.PGW_KNATIVE_OUTAGE_EVENTS ?? 500);
const BURST_EVENTS = Number(process.env.PGW_KNATIVE_BURST_EVENTS ?? 200);
const DONE = "io.podgateway.client.scheduling.done";

describe("Knative retries through the real broker", () => {
  let flow: Flow;
  let sink: Sink;
  const run = Date.now().toString(36);

  before(async () => {
    flow = await startFlow(OUTAGE_EVENTS * 2 + BURST_EVENTS * 2 + 100);
    sink = flow.sink;
  });
  after(() => flow?.stop());

  /** Sends the events for gateway foo (at most 100 requests open at once); returns the ids the broker refused. */
  const send = async (ids: string[]): Promise<string[]> => {
    const refused: string[] = [];
    let next = 0;
    const worker = async () => {
      while (next < ids.length) {
        const id = ids[next++]!;
        const response = await sendToBroker({ id, source: "/e2e/knative-retries", type: "io.podgateway.client.pending", data: { gateway_name: "foo" } });
        await response.body?.cancel();
        if (response.status !== 202) refused.push(id);
      }
    };
    await Promise.all(Array.from({ length: 100 }, worker));
    return refused;
  };
  const idsFor = (prefix: string, count: number) => Array.from({ length: count }, (_, i) => `${prefix}-${run}-${i}`);

  /** Every request answered at the sink by a done event; the same request only ever with the same result id. */
  const expectResults = async (ids: string[], timeoutMs: number) => {
    const wanted = new Set(ids);
    let byRequest = new Map<string, Set<string>>();
    await waitFor(`${ids.length} done results at the sink`, async () => {
      byRequest = new Map();
      for (const e of await sink.events()) {
        const cause = e.ContextAttributes.Extensions?.causationid;
        // the controller's lifecycle events (ready, ...) name the request too
        if (!cause || !wanted.has(cause) || !e.ContextAttributes.type.includes(".scheduling.")) continue;
        assert.equal(e.ContextAttributes.type, DONE, `${cause}: ${e.Data}`);
        byRequest.set(cause, (byRequest.get(cause) ?? new Set()).add(e.ContextAttributes.id));
      }
      return byRequest.size === ids.length;
    }, timeoutMs);
    for (const [cause, resultIds] of byRequest) assert.equal(resultIds.size, 1, `${cause} got results with different ids`);
  };

  const podCount = async () => (await listPods(CLIENT_NS)).length;

  test(`${OUTAGE_EVENTS} events while the API server is stopped ~10 s: exactly ${OUTAGE_EVENTS} pods, every result at the sink`, async () => {
    // This provisioner runs as cluster admin, like the fault tests: right after an API server restart, RBAC
    // can deny a ServiceAccount for a moment (seen: 403 "cannot create resource pods"), which the provisioner
    // rightly treats as permanent (a failed event); with its admin identity only the outage itself is tested.
    await flow.service.stop();
    const service = flow.service = await startProvisioner({ KUBECONFIG: clusterKubeconfig(), PORT: new URL(flow.service.url).port });
    // One event first: the sender check (TokenReview) caches the Trigger's verdict for a minute, so during the
    // outage the events reach the handler, whose 503 is what this tests (uncached, the check itself answers 503).
    const warm = idsFor("kn-outage-warm", 1);
    assert.deepEqual(await send(warm), []);
    await expectResults(warm, 30_000);
    const before = await podCount();
    cluster("stop", "apiserver");
    // The in-memory channel delivers synchronously: the ingress answers once the Trigger's retries are done,
    // so the API server comes back while the events are still being sent and retried.
    const restart = new Promise<void>((resolve, reject) =>
      setTimeout(() => execFile("bash", [join(repo, "cluster/cluster.sh"), "start", "apiserver"], (error) => (error ? reject(error) : resolve())), 10_000)
    );
    const ids = idsFor("kn-outage", OUTAGE_EVENTS);
    const refused = await send(ids);
    await restart;
    assert.deepEqual(refused, [], "the broker delivered every event (its retries outlast the outage)");
    assert.ok(service.logs.some((l) => l.outcome === "retry"), "the service answered 503 while the API server was down");
    await expectResults(ids, 120_000);
    await waitFor(`${OUTAGE_EVENTS} new pods`, async () => (await podCount()) - before >= OUTAGE_EVENTS, 30_000);
    assert.equal((await podCount()) - before, OUTAGE_EVENTS, "no duplicate pods");
  });

  test(`a burst of ${BURST_EVENTS} with --max-in-flight 4: all provisioned by Knative's retries (429 + Retry-After)`, async (t) => {
    // same port: the Knative Service's address, and so the Trigger, stay as they are
    const port = new URL(flow.service.url).port;
    await flow.service.stop();
    const service = flow.service = await startProvisioner({ MAX_IN_FLIGHT: "4", PORT: port });
    const before = await podCount();
    const ids = idsFor("kn-burst", BURST_EVENTS);
    // The in-memory channel is synchronous: an event whose Trigger retries ran out would be refused to the
    // sender (500). deploy/'s Trigger (20 linear retries, Retry-After honoured) must deliver every one.
    const started = Date.now();
    const refused = await send(ids);
    t.diagnostic(`${BURST_EVENTS - refused.length} delivered by the broker's retries in ${((Date.now() - started) / 1000).toFixed(1)} s, ${refused.length} refused`);
    assert.deepEqual(refused, [], "no event ran out of the Trigger's retries");
    await expectResults(ids, 120_000);
    assert.equal((await podCount()) - before, BURST_EVENTS, "one pod per event");
    const metrics = await (await fetch(`${service.url}/metrics`)).text();
    const busy = Number(/outcome="busy"\} (\d+)/.exec(metrics)?.[1] ?? 0);
    assert.ok(busy > 0, `the burst met 429s (busy: ${busy})`);
    t.diagnostic(`429 answers: ${busy}`);
  });
});
