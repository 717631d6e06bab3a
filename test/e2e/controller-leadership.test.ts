/**
 * A paused leader writes nothing after its term. The leading controller is stopped with SIGSTOP past its Lease;
 * meanwhile the standby takes over and does the work (a new client's `ready`, a released client's `deleted`).
 * Then the old leader gets SIGCONT: its timers and its watch stream, with everything that changed while it was
 * stopped, run at once — and it must neither deliver an event nor touch a pod: its term ended while it slept
 * (the renew deadline, measured on the monotonic clock), and every write of its tracker is fenced with the term.
 * Each controller has its own K_SINK, so what arrives after the resume is attributable to one process.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { CloudEvent, HTTP } from "cloudevents";
import { getPodOrNull, routedNamespace, waitFor } from "../support/cluster.ts";
import { type EventReceiver, startReceiver } from "../support/event-receiver.ts";
import { replyEvent } from "../support/received.ts";
import { removeFinalizers, type RunningService, startController, startService } from "../support/service.ts";

const LEASE_S = 4;
const RENEW_S = 3;
const RETRY_S = 1;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function send(url: string, type: string, id: string, data: unknown) {
  const message = HTTP.binary(new CloudEvent({ id, source: "/e2e/leadership", type: `io.podgateway.client.${type}`, data }));
  const response = await fetch(url, { method: "POST", headers: message.headers as Record<string, string>, body: message.body as string });
  const body = await response.text();
  const event = replyEvent(Object.fromEntries(response.headers), body);
  assert.ok(event, body);
  return event;
}

const leading = async (controller: RunningService) => (await (await fetch(`${controller.url}/leader`)).json()).leading as boolean;

describe("controller: a leader paused past its term (SIGSTOP) writes nothing after SIGCONT", () => {
  let namespace: Awaited<ReturnType<typeof routedNamespace>>;
  let service: RunningService;
  let first: RunningService;
  let second: RunningService;
  let firstSink: EventReceiver;
  let secondSink: EventReceiver;
  const env = (sink: EventReceiver) => ({
    CLIENT_NAMESPACE: namespace.name,
    K_SINK: sink.url,
    CLIENT_LIFECYCLE_EVENTS: "true",
    LEADER_LEASE_DURATION_SECONDS: String(LEASE_S),
    LEADER_RENEW_DEADLINE_SECONDS: String(RENEW_S),
    LEADER_RETRY_PERIOD_SECONDS: String(RETRY_S),
  });
  const typesOf = (sink: EventReceiver, pod: string) =>
    sink.events.filter((event) => event.subject === pod && /\.(ready|failed|deleted)$/.test(event.type)).map((event) => event.type.split(".").pop());

  before(async () => {
    namespace = await routedNamespace("e2e-leadership");
    [firstSink, secondSink] = [await startReceiver(), await startReceiver()];
    service = await startService({ CLIENT_NAMESPACE: namespace.name });
    // The first controller leads (it is alone); the second is the standby.
    first = await startController(env(firstSink));
    await waitFor("the first controller to lead", () => leading(first), 15_000);
    second = await startController(env(secondSink));
  });
  after(async () => {
    if (first?.process.pid && first.process.exitCode === null) process.kill(first.process.pid, "SIGCONT");
    for (const controller of [first, second]) await controller?.stop("SIGKILL").catch(() => {});
    await service?.stop();
    await firstSink?.close();
    await secondSink?.close();
    if (namespace) removeFinalizers(namespace.name);
    await namespace?.remove();
  });

  test("the standby takes over and does the work; the old leader, resumed, delivers and patches nothing", async (t) => {
    const before = (await send(service.url, "pending", "lead-1", { gateway_name: "foo" })).data as { pod_name: string };
    await waitFor("ready from the first leader", async () => typesOf(firstSink, before.pod_name).includes("ready"));
    await waitFor("the record annotation", async () =>
      (await getPodOrNull(namespace.name, before.pod_name))?.metadata?.annotations?.["podgateway.io/lifecycle-emitted"] === "ready");

    process.kill(first.process.pid!, "SIGSTOP");
    const stopped = Date.now();
    // While the first is stopped: a new client, and a release of the old one.
    const during = (await send(service.url, "pending", "lead-2", { gateway_name: "foo" })).data as { pod_name: string };
    assert.equal((await send(service.url, "release", "lead-rel-1", { pod_name: before.pod_name })).type, "io.podgateway.client.release.done");
    await waitFor("the standby to lead", () => leading(second), 30_000);
    await waitFor("the standby's ready for the new client", async () => typesOf(secondSink, during.pod_name).includes("ready"), 30_000);
    await waitFor("the standby's deleted for the released client", async () => typesOf(secondSink, before.pod_name).includes("deleted"), 30_000);
    // Past the first's lease for sure, and its pod state all changed while it slept.
    while (Date.now() - stopped < (LEASE_S + 2 * RETRY_S) * 1000) await sleep(200);

    const sinkAtResume = firstSink.events.length;
    const logsAtResume = first.logs.length;
    process.kill(first.process.pid!, "SIGCONT");
    const resumed = Date.now();
    await sleep((RENEW_S + 3 * RETRY_S) * 1000);
    t.diagnostic(`stopped ${resumed - stopped} ms; after the resume the first logged: ${JSON.stringify(first.logs.slice(logsAtResume).map((line) => line.msg))}`);

    assert.deepEqual(firstSink.events.slice(sinkAtResume).map((event) => `${event.type} ${event.subject}`), [], "nothing delivered after the term");
    const wrote = first.logs.slice(logsAtResume).filter((line) => line.msg === "client lifecycle" || line.msg === "abandoned request: gated pod deleted");
    assert.deepEqual(wrote, [], "no delivery or delete logged after the term");
    assert.ok(first.logs.slice(logsAtResume).some((line) => line.msg === "leader election: stopped leading"), "it noticed its term had ended");
    assert.equal(await leading(first), false);
    assert.equal(await leading(second), true, "the standby still leads");
    // Each transition delivered once, by the leader of its time.
    assert.deepEqual(typesOf(firstSink, during.pod_name), [], "the new client was never the first's");
    assert.deepEqual(typesOf(secondSink, during.pod_name), ["ready"]);
    assert.deepEqual([...typesOf(firstSink, before.pod_name), ...typesOf(secondSink, before.pod_name)], ["ready", "deleted"]);
  });
});
