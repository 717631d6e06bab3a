/**
 * The CloudEvents conformance CLI (`cloudevents`, built from ../shared/vendor) against the real service on the
 * local cluster: `invoke` sends the YAML event files in test/conformance/events (binary and structured mode,
 * CloudEvents 1.0 and 0.3), `send` one event in each mode, and `listen` is the service's K_SINK. The CLI does not
 * read replies, so results are checked where the service also delivers them, at `listen`, and in the cluster.
 *
 * The first block runs the CLI against itself (invoke/send → listen, no cluster), so that a broken tool is told
 * apart from a broken service.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { attribute, type CliEvent, eventsDir, type Listener, runCli, startListener } from "../conformance/cloudevents.ts";
import { getPodOrNull, listPods, routedBy, routedNamespace } from "../support/cluster.ts";
import { type RunningService, startService } from "../support/service.ts";

const DONE = "io.podgateway.client.scheduling.done";
const FAILED = "io.podgateway.client.scheduling.failed";
const SOURCE = "/conformance/cloudevents";

/** The id of each event file's event, and what it must get at K_SINK; a file without an entry fails the run. */
const expected: Record<string, { id: string; gateway?: string; outcome: "done" | "InvalidEventData" | "GatewayNotRouted" | "ignored" }> = {
  "01-pending-foo-binary-v1.yaml": { id: "conformance-foo-binary-v1", gateway: "foo", outcome: "done" },
  "02-pending-bar-structured-v1.yaml": { id: "conformance-bar-structured-v1", gateway: "bar", outcome: "done" },
  "03-pending-foo-binary-v03.yaml": { id: "conformance-foo-binary-v03", gateway: "foo", outcome: "done" },
  "04-pending-invalid-gateway-name.yaml": { id: "conformance-invalid-gateway-name", outcome: "InvalidEventData" },
  "05-pending-unknown-gateway-baz.yaml": { id: "conformance-unknown-gateway-baz", gateway: "baz", outcome: "GatewayNotRouted" },
  "06-other-type.yaml": { id: "conformance-other-type", outcome: "ignored" },
};

/** `cloudevents send` arguments for a pending event in `mode`. */
function sendArgs(url: string, id: string, gateway: string, mode: "binary" | "structured"): string[] {
  return [
    "send", url, "--mode", mode, "--id", id, "--source", SOURCE, "--type", "io.podgateway.client.pending",
    "--datacontenttype", "application/json", "--data", JSON.stringify({ gateway_name: gateway }), "--extension", "comexampleorigin=send",
  ];
}

describe("the conformance CLI against itself: invoke and send → listen", () => {
  let listener: Listener;
  before(async () => {
    listener = await startListener();
  });
  after(async () => {
    await listener?.stop();
  });

  test("invoke sends every file in its mode and spec version; send in both modes", async () => {
    const invoked = await runCli(["invoke", listener.url, "-f", eventsDir]);
    assert.equal(invoked.code, 0, invoked.stderr);
    for (const mode of ["binary", "structured"] as const) {
      const sent = await runCli(sendArgs(listener.url, `self-${mode}`, "foo", mode));
      assert.equal(sent.code, 0, sent.stderr);
    }
    const got = await listener.waitFor(8);
    assert.deepEqual(got.map((event) => event.ContextAttributes.id), [...Object.values(expected).map((want) => want.id), "self-binary", "self-structured"]);
    assert.deepEqual(got.map((event) => event.Mode), ["binary", "structured", "binary", "binary", "structured", "binary", "binary", "structured"]);
    assert.deepEqual(got.map((event) => event.ContextAttributes.specversion), ["1.0", "1.0", "0.3", "1.0", "1.0", "1.0", "1.0", "1.0"]);
    const [fooV1, barStructured, , , , other, sentBinary, sentStructured] = got as [CliEvent, CliEvent, CliEvent, CliEvent, CliEvent, CliEvent, CliEvent, CliEvent];
    assert.deepEqual(JSON.parse(fooV1.Data!), { gateway_name: "foo" });
    assert.equal(attribute(barStructured, "comexampleorigin"), "conformance");
    assert.equal(JSON.parse(barStructured.Data!).gateway_name, "bar", "JSON data is embedded as JSON, not base64");
    assert.equal(other.Data, "Hello, World!\n");
    for (const sent of [sentBinary, sentStructured]) {
      assert.equal(attribute(sent, "source"), SOURCE);
      assert.equal(attribute(sent, "comexampleorigin"), "send");
      assert.deepEqual(JSON.parse(sent.Data!), { gateway_name: "foo" });
    }
  });

  test("invoke exits 1 and says why when nothing answers, or when a file is missing", async () => {
    const closed = await runCli(["invoke", "http://127.0.0.1:1/", "-f", join(eventsDir, "01-pending-foo-binary-v1.yaml")]);
    assert.equal(closed.code, 1);
    assert.match(closed.stderr, /connection refused/);
    const missing = await runCli(["invoke", listener.url, "-f", join(eventsDir, "no-such-file.yaml")]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no-such-file/);
  });
});

describe("conformance CLI events against the service on the local cluster, results at a listen K_SINK", () => {
  let service: RunningService;
  let listener: Listener;
  let namespace: Awaited<ReturnType<typeof routedNamespace>>;
  const runId = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const sent = { binary: `conformance-send-binary-${runId}`, structured: `conformance-send-structured-${runId}` };
  /** The result event at K_SINK for each request id. */
  const results = new Map<string, CliEvent>();

  before(async () => {
    listener = await startListener();
    namespace = await routedNamespace("e2e-conformance");
    service = await startService({ CLIENT_NAMESPACE: namespace.name, K_SINK: listener.url });
    // every request got a 2xx answer, or the CLI exits 1 naming the status
    const invoked = await runCli(["invoke", service.url, "-f", eventsDir]);
    assert.equal(invoked.code, 0, `cloudevents invoke failed:\n${invoked.stdout}\n${invoked.stderr}`);
    for (const mode of ["binary", "structured"] as const) {
      const result = await runCli(sendArgs(service.url, sent[mode], mode === "binary" ? "foo" : "bar", mode));
      assert.equal(result.code, 0, `cloudevents send --mode ${mode} failed:\n${result.stderr}`);
    }
    // 5 of the files ask for a pod, plus the 2 sent; the other type gets no result
    for (const event of await listener.waitFor(7)) results.set(attribute(event, "causationid") ?? "", event);
  });
  after(async () => {
    await service?.stop();
    await listener?.stop();
    await namespace?.remove();
  });

  test("one result event per request that asks for a pod, none for the other type", () => {
    assert.equal(listener.events().length, 7);
    const ids = Object.values(expected).filter((want) => want.outcome !== "ignored").map((want) => want.id);
    assert.deepEqual([...results.keys()].sort(), [...ids, sent.binary, sent.structured].sort());
  });

  const doneCases = [
    ...Object.entries(expected).filter(([, want]) => want.outcome === "done").map(([file, want]) => ({ what: `invoke ${file}`, id: want.id, gateway: want.gateway!, source: "/conformance/invoke" })),
    { what: "send --mode binary", id: sent.binary, gateway: "foo", source: SOURCE },
    { what: "send --mode structured", id: sent.structured, gateway: "bar", source: SOURCE },
  ];
  for (const { what, id, gateway, source } of doneCases) {
    test(`${what}: done at K_SINK, with a pod routed by ${gateway} (gateway-init present)`, async () => {
      const result = results.get(id)!;
      assert.equal(attribute(result, "type"), DONE, JSON.stringify(result));
      assert.equal(attribute(result, "datacontenttype"), "application/json");
      const data = JSON.parse(result.Data!);
      assert.equal(data.gateway_name, gateway);
      assert.equal(data.namespace, namespace.name);
      assert.equal(attribute(result, "subject"), data.pod_name);
      assert.equal(attribute(result, "causationsource"), source);

      const pod = await getPodOrNull(namespace.name, data.pod_name);
      assert.ok(pod, `pod ${namespace.name}/${data.pod_name} exists`);
      assert.ok(pod.spec?.initContainers?.some((container) => container.name === "gateway-init"), "gateway-init init container");
      assert.deepEqual(routedBy(pod), [gateway]);
      assert.equal(pod.metadata?.labels?.setGateway, gateway);
    });
  }

  test("04-pending-invalid-gateway-name.yaml: failed, InvalidEventData naming data.gateway_name", () => {
    const result = results.get(expected["04-pending-invalid-gateway-name.yaml"]!.id)!;
    assert.equal(attribute(result, "type"), FAILED, JSON.stringify(result));
    const data = JSON.parse(result.Data!);
    assert.equal(data.reason, "InvalidEventData");
    assert.match(data.message, /data\.gateway_name\b/);
  });

  test("05-pending-unknown-gateway-baz.yaml: failed, GatewayNotRouted, and no baz pod left", async () => {
    const result = results.get(expected["05-pending-unknown-gateway-baz.yaml"]!.id)!;
    assert.equal(attribute(result, "type"), FAILED, JSON.stringify(result));
    const data = JSON.parse(result.Data!);
    assert.equal(data.reason, "GatewayNotRouted");
    assert.equal(data.gateway_name, "baz");
    assert.match(data.message, /setGateway=baz/);
    assert.deepEqual((await listPods(namespace.name, "setGateway=baz")).map((pod) => pod.metadata?.name), []);
  });

  test("exactly one pod per done result, none for the others", async () => {
    const pods = await listPods(namespace.name);
    const done = [...results.values()].filter((result) => attribute(result, "type") === DONE).map((result) => JSON.parse(result.Data!).pod_name).sort();
    assert.equal(done.length, 5);
    assert.deepEqual(pods.map((pod) => pod.metadata?.name).sort(), done);
  });
});
