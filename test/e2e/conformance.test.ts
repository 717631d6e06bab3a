/**
 * Conformance-style run: the YAML event files in test/conformance/events (the CloudEvents conformance tool's
 * file shape) are sent by `cesend`, a small sender built on the CloudEvents Go SDK, to the real service on the
 * local cluster; every reply is parsed by the Go SDK. A second SDK on the sending side, binary and structured
 * mode, CloudEvents 1.0 and 0.3.
 *
 * The first block checks the sender itself against a local echo server (no cluster needed), so that a broken
 * sender is told apart from a broken service.
 */
import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { basename, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { eventsDir, sendEvents, type SendOutcome } from "../conformance/cesend.ts";
import { getPodOrNull, listPods, routedBy, routedNamespace } from "../support/cluster.ts";
import { type RunningService, startService } from "../support/service.ts";

const DONE = "io.podgateway.client.scheduling.done";
const FAILED = "io.podgateway.client.scheduling.failed";

/** What each event file must get back; a file without an entry here fails the run. */
const expected: Record<string, { gateway?: string; outcome: "done" | "InvalidEventData" | "GatewayNotRouted" | "ignored" }> = {
  "01-pending-foo-binary-v1.yaml": { gateway: "foo", outcome: "done" },
  "02-pending-bar-structured-v1.yaml": { gateway: "bar", outcome: "done" },
  "03-pending-foo-binary-v03.yaml": { gateway: "foo", outcome: "done" },
  "04-pending-invalid-gateway-name.yaml": { outcome: "InvalidEventData" },
  "05-pending-unknown-gateway-baz.yaml": { gateway: "baz", outcome: "GatewayNotRouted" },
  "06-other-type.yaml": { outcome: "ignored" },
};

const runSuffix = `-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

describe("the conformance sender (cesend) on a local echo server", () => {
  type Seen = { headers: IncomingHttpHeaders; body: string };
  const seen: Seen[] = [];
  let server: Server;
  let url: string;

  before(async () => {
    server = createServer((request, response) => {
      let body = "";
      request.setEncoding("utf8");
      request.on("data", (chunk) => (body += chunk));
      request.on("end", () => {
        seen.push({ headers: request.headers, body });
        if (request.headers["ce-type"] === "io.cloudevents.conformance.minimum") {
          response.writeHead(202).end();
          return;
        }
        response.writeHead(200, {
          "ce-specversion": "1.0",
          "ce-id": `echo-${seen.length}`,
          "ce-source": "/echo",
          "ce-type": "echo",
          "content-type": "application/json",
        }).end(JSON.stringify({ n: String(seen.length) }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  after(async () => {
    await new Promise((resolve) => server?.close(resolve));
  });

  test("sends each file in its mode and spec version, with the id suffix, and reads the replies", async () => {
    const { code, outcomes, stderr } = await sendEvents(url, [eventsDir], { idSuffix: "-echo" });
    assert.equal(code, 0, stderr);
    assert.deepEqual(outcomes.map((outcome) => basename(outcome.file)), Object.keys(expected));
    assert.equal(seen.length, outcomes.length);

    const [fooV1, barStructured, fooV03] = seen;
    assert.equal(fooV1!.headers["ce-specversion"], "1.0");
    assert.equal(fooV1!.headers["ce-id"], "conformance-foo-binary-v1-echo");
    assert.equal(fooV1!.headers["content-type"], "application/json");
    assert.deepEqual(JSON.parse(fooV1!.body), { gateway_name: "foo" });

    assert.equal(barStructured!.headers["content-type"], "application/cloudevents+json");
    assert.equal(barStructured!.headers["ce-id"], undefined);
    const structured = JSON.parse(barStructured!.body);
    assert.equal(structured.specversion, "1.0");
    assert.equal(structured.id, "conformance-bar-structured-v1-echo");
    assert.equal(structured.comexampleorigin, "conformance");
    assert.equal(structured.data.gateway_name, "bar", "JSON data is embedded as JSON, not base64");

    assert.equal(fooV03!.headers["ce-specversion"], "0.3");

    for (const outcome of outcomes.slice(0, 5)) {
      assert.equal(outcome.status, 200);
      assert.equal(outcome.reply?.type, "echo");
    }
    assert.equal(outcomes[5]!.status, 202);
    assert.equal(outcomes[5]!.reply, undefined);
  });

  test("exits 1 and says why when nothing answers; exits 2 on a bad file", async () => {
    const closed = await sendEvents("http://127.0.0.1:1/", [join(eventsDir, "01-pending-foo-binary-v1.yaml")]);
    assert.equal(closed.code, 1);
    assert.equal(closed.outcomes[0]!.status, undefined);
    assert.match(closed.outcomes[0]!.error ?? "", /connection refused/);

    const missing = await sendEvents(url, [join(eventsDir, "no-such-file.yaml")]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /no-such-file/);
  });
});

describe("CloudEvents Go SDK events from YAML files against the service on the local cluster", () => {
  let service: RunningService;
  let namespace: Awaited<ReturnType<typeof routedNamespace>>;
  const byFile = new Map<string, SendOutcome>();

  before(async () => {
    namespace = await routedNamespace("e2e-conformance");
    service = await startService({ CLIENT_NAMESPACE: namespace.name });
    const { code, outcomes, stderr } = await sendEvents(service.url, [eventsDir], { idSuffix: runSuffix });
    assert.equal(code, 0, `cesend failed:\n${stderr}\n${JSON.stringify(outcomes, null, 2)}`);
    for (const outcome of outcomes) byFile.set(basename(outcome.file), outcome);
  });
  after(async () => {
    await service?.stop();
    await namespace?.remove();
  });

  test("every event file was sent once and has an expectation", () => {
    assert.deepEqual([...byFile.keys()].sort(), Object.keys(expected).sort());
    for (const outcome of byFile.values()) assert.ok(outcome.id.endsWith(runSuffix), outcome.id);
  });

  for (const [file, want] of Object.entries(expected).filter(([, want]) => want.outcome === "done")) {
    test(`${file}: done, with a pod routed by ${want.gateway} (gateway-init present)`, async () => {
      const outcome = byFile.get(file)!;
      assert.equal(outcome.status, 200, JSON.stringify(outcome));
      const reply = outcome.reply!;
      assert.equal(reply?.type, DONE, JSON.stringify(outcome));
      assert.equal(reply.datacontenttype, "application/json");
      assert.equal(reply.data?.gateway_name, want.gateway);
      assert.equal(reply.data?.namespace, namespace.name);
      assert.equal(reply.subject, reply.data?.pod_name);
      assert.equal(reply.causationid, outcome.id);
      assert.equal(reply.causationsource, "/conformance/cesend");

      const pod = await getPodOrNull(namespace.name, reply.data!.pod_name!);
      assert.ok(pod, `pod ${namespace.name}/${reply.data!.pod_name} exists`);
      assert.ok(pod.spec?.initContainers?.some((container) => container.name === "gateway-init"), "gateway-init init container");
      assert.deepEqual(routedBy(pod), [want.gateway]);
      assert.equal(pod.metadata?.labels?.setGateway, want.gateway);
    });
  }

  test("04-pending-invalid-gateway-name.yaml: failed, InvalidEventData naming data.gateway_name", () => {
    const outcome = byFile.get("04-pending-invalid-gateway-name.yaml")!;
    assert.equal(outcome.status, 200, JSON.stringify(outcome));
    assert.equal(outcome.reply?.type, FAILED, JSON.stringify(outcome));
    assert.equal(outcome.reply?.data?.reason, "InvalidEventData");
    assert.match(outcome.reply?.data?.message ?? "", /data\.gateway_name\b/);
    assert.equal(outcome.reply?.causationid, outcome.id);
  });

  test("05-pending-unknown-gateway-baz.yaml: failed, GatewayNotRouted, and no baz pod left", async () => {
    const outcome = byFile.get("05-pending-unknown-gateway-baz.yaml")!;
    assert.equal(outcome.status, 200, JSON.stringify(outcome));
    assert.equal(outcome.reply?.type, FAILED, JSON.stringify(outcome));
    assert.equal(outcome.reply?.data?.reason, "GatewayNotRouted");
    assert.equal(outcome.reply?.data?.gateway_name, "baz");
    assert.match(outcome.reply?.data?.message ?? "", /setGateway=baz/);
    assert.deepEqual((await listPods(namespace.name, "setGateway=baz")).map((pod) => pod.metadata?.name), []);
  });

  test("06-other-type.yaml: 202 Accepted, no reply event, empty body", () => {
    const outcome = byFile.get("06-other-type.yaml")!;
    assert.equal(outcome.status, 202, JSON.stringify(outcome));
    assert.equal(outcome.reply, undefined);
    assert.equal(outcome.body ?? "", "");
  });

  test("exactly one pod per done event, none for the others", async () => {
    const pods = await listPods(namespace.name);
    const done = [...byFile.values()].filter((outcome) => outcome.reply?.type === DONE).map((outcome) => outcome.reply!.data!.pod_name).sort();
    assert.equal(done.length, 3);
    assert.deepEqual(pods.map((pod) => pod.metadata?.name).sort(), done);
  });
});
