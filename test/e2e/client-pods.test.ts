/**
 * What operators set about client pods, on the local cluster with the real webhooks: their own pod template
 * (accepted, and refused at start-up when it cannot work), the `--gateways` allow-list (no API call for other
 * gateways, counted by the API server itself), and W3C trace context from request to result, pod and lifecycle events.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { CloudEvent, type CloudEventV1, HTTP } from "cloudevents";
import { stringify } from "yaml";
import { apiRequestCounts } from "../../bench/lib/api-requests.ts";
import { adminClient, getPodOrNull, listPods, routedBy, routedNamespace, waitFor } from "../support/cluster.ts";
import { type EventReceiver, startReceiver } from "../support/event-receiver.ts";
import { replyEvent } from "../support/received.ts";
import { type RunningService, startController, startService } from "../support/service.ts";

const T = "io.podgateway.client.";
const PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const HEADER_PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
type Reply = { status: number; event?: CloudEventV1<Record<string, string>>; body: string };

async function send(url: string, id: string, gateway: string, extra: { extensions?: Record<string, string>; headers?: Record<string, string> } = {}): Promise<Reply> {
  const message = HTTP.binary(new CloudEvent({ id, source: "/e2e/client-pods", type: `${T}pending`, data: { gateway_name: gateway }, ...extra.extensions }));
  const response = await fetch(url, { method: "POST", headers: { ...(message.headers as Record<string, string>), ...extra.headers }, body: message.body as string });
  const body = await response.text();
  const headers = Object.fromEntries(response.headers);
  return { status: response.status, body, event: replyEvent(headers, body) };
}

/** Pod API calls the API server served, by verb: POST, DELETE, PATCH, GET of pods (not watches, lists or status). */
async function podCalls(): Promise<Record<string, number>> {
  const kube = await adminClient();
  const counts = apiRequestCounts(await kube.performRequest<string>({ method: "GET", path: "/metrics", expect: "text" }));
  return Object.fromEntries(["POST", "DELETE", "PATCH", "GET"].map((verb) => [verb, counts[`${verb} pods`] ?? 0]));
}

/**
 * The counter is the whole cluster's: an earlier test's namespace still being emptied (the namespace controller
 * and kwok deleting its pods) moves it too. Wait until no namespace is terminating and the counts hold still.
 */
async function quietPodCalls(): Promise<Record<string, number>> {
  const kube = await adminClient();
  let last = await podCalls();
  await waitFor("the cluster's pod calls to settle", async () => {
    const namespaces = await kube.performRequest<{ items: { status?: { phase?: string } }[] }>({ method: "GET", path: "/api/v1/namespaces" });
    await new Promise((resolve) => setTimeout(resolve, 500));
    const now = await podCalls();
    const still = JSON.stringify(now) === JSON.stringify(last);
    last = now;
    return still && !namespaces.items.some((namespace) => namespace.status?.phase === "Terminating");
  }, 120_000);
  return last;
}

describe("client pods as operators shape them", () => {
  let namespace: Awaited<ReturnType<typeof routedNamespace>>;
  let dir: string;
  const services: RunningService[] = [];
  const start = async (env: Record<string, string>) => {
    const service = await startService({ CLIENT_NAMESPACE: namespace.name, ...env });
    services.push(service);
    return service;
  };
  const templateFile = (name: string, manifest: unknown) => {
    const file = join(dir, name);
    writeFileSync(file, typeof manifest === "string" ? manifest : stringify(manifest));
    return file;
  };

  before(async () => {
    namespace = await routedNamespace("e2e-client-pods");
    dir = mkdtempSync(join(tmpdir(), "client-pods-"));
    const kube = await adminClient();
    const ns = namespace.name;
    await kube.performRequest({ method: "POST", path: `/api/v1/namespaces/${ns}/serviceaccounts`, body: { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "client" } } });
    await kube.performRequest({
      method: "POST",
      path: `/api/v1/namespaces/${ns}/secrets`,
      body: { apiVersion: "v1", kind: "Secret", metadata: { name: "client-credentials" }, stringData: { token: "s3cret" } },
    });
  });
  after(async () => {
    for (const service of services) await service.stop();
    await namespace?.remove();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("--gateways foo: bar and nosuch fail UnknownGateway with zero pod API calls; foo is still provisioned", async () => {
    const service = await start({ GATEWAYS: "foo" });
    const before = await quietPodCalls();
    for (const [id, gateway] of [["gw-bar", "bar"], ["gw-nosuch", "nosuch"]] as const) {
      const reply = await send(service.url, id, gateway);
      assert.equal(reply.event?.type, `${T}scheduling.failed`, reply.body);
      assert.equal(reply.event?.data?.reason, "UnknownGateway");
      assert.match(reply.event?.data?.message ?? "", new RegExp(`gateway ${gateway} is not one of the gateways served here \\(--gateways foo\\)`));
    }
    assert.deepEqual(await podCalls(), before, "no pod was created, read, patched or deleted");
    // The counter counts: an allowed gateway makes its calls (create, gate removal).
    const done = await send(service.url, "gw-foo", "foo");
    assert.equal(done.event?.type, `${T}scheduling.done`, done.body);
    const afterFoo = await podCalls();
    assert.ok(afterFoo.POST! >= before.POST! + 1 && afterFoo.PATCH! >= before.PATCH! + 1, JSON.stringify({ before, afterFoo }));
  });

  test("a template with resources, env from a Secret, an emptyDir at /tmp, a toleration and a service account", async () => {
    const container = {
      name: "app",
      image: "docker.io/library/busybox:1.37",
      command: ["sleep", "infinity"],
      resources: { requests: { cpu: "25m", memory: "32Mi" }, limits: { cpu: "250m", memory: "64Mi" } },
      env: [{ name: "TOKEN", valueFrom: { secretKeyRef: { name: "client-credentials", key: "token" } } }],
      volumeMounts: [{ name: "tmp", mountPath: "/tmp" }],
      securityContext: { runAsNonRoot: true, runAsUser: 1000, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
    };
    const toleration = { key: "dedicated", operator: "Equal", value: "clients", effect: "NoSchedule" };
    const file = templateFile("template.yaml", {
      apiVersion: "v1",
      kind: "PodTemplate",
      metadata: { name: "clients" },
      template: {
        metadata: { labels: { team: "blue" }, annotations: { "example.com/owner": "blue" } },
        spec: { serviceAccountName: "client", tolerations: [toleration], volumes: [{ name: "tmp", emptyDir: {} }], containers: [container] },
      },
    });
    const service = await start({ CLIENT_POD_TEMPLATE: file });
    assert.ok(service.logs.some((line) => /client pod template accepted/.test(String(line.msg))));
    const reply = await send(service.url, "template-1", "foo");
    assert.equal(reply.status, 200, reply.body);
    // The answer is exactly what it is without a template.
    const name = reply.event?.data?.pod_name;
    assert.equal(reply.event?.type, `${T}scheduling.done`);
    assert.deepEqual(reply.event?.data, {
      pod_name: name,
      namespace: namespace.name,
      gateway_name: "foo",
      message: `client pod ${namespace.name}/${name} is routed by gateway foo`,
      served_from: "cold",
    });
    assert.equal(reply.event?.subject, name);
    assert.equal(reply.event?.causationid, "template-1");

    const pod = (await getPodOrNull(namespace.name, name!))!;
    assert.equal(pod.spec?.serviceAccountName, "client");
    assert.ok(pod.spec?.tolerations?.some((item) => item.key === "dedicated" && item.value === "clients" && item.effect === "NoSchedule"));
    assert.deepEqual(pod.spec?.volumes?.find((volume) => volume.name === "tmp"), { name: "tmp", emptyDir: {} });
    const app = pod.spec?.containers.find((item) => item.name === "app");
    assert.equal(app?.image, container.image);
    assert.deepEqual(app?.resources, container.resources);
    assert.deepEqual(app?.env, container.env);
    assert.ok(app?.volumeMounts?.some((mount) => mount.name === "tmp" && mount.mountPath === "/tmp"));
    assert.equal(app?.securityContext?.runAsUser, 1000);
    assert.equal(pod.metadata?.labels?.team, "blue");
    assert.equal(pod.metadata?.annotations?.["example.com/owner"], "blue");
    // Plus what the provisioner and the gateway own.
    assert.equal(pod.metadata?.labels?.setGateway, "foo");
    assert.equal(pod.metadata?.labels?.["app.kubernetes.io/managed-by"], "podgateway-provisioner");
    assert.deepEqual(routedBy(pod), ["foo"]);
    assert.ok(pod.spec?.containers.some((item) => item.name === "gateway-sidecar"), "foo's sidecar");
    assert.deepEqual(pod.spec?.schedulingGates ?? [], []);
    await waitFor("the templated pod to run on a kwok node", async () => {
      const current = await getPodOrNull(namespace.name, name!);
      return current?.status?.phase === "Running" && Boolean(current.spec?.nodeName);
    });
  });

  test("--client-image and --client-command replace the template's first container's", async () => {
    const file = templateFile("image.yaml", { apiVersion: "v1", kind: "Pod", spec: { containers: [{ name: "c", image: "busybox" }] } });
    const service = await start({ CLIENT_POD_TEMPLATE: file, CLIENT_IMAGE: "docker.io/library/nginx:1", CLIENT_COMMAND: "sleep 60" });
    const reply = await send(service.url, "image-1", "bar");
    assert.equal(reply.event?.type, `${T}scheduling.done`, reply.body);
    const pod = (await getPodOrNull(namespace.name, reply.event!.data!.pod_name!))!;
    const c = pod.spec?.containers.find((item) => item.name === "c");
    assert.deepEqual([c?.image, c?.command], ["docker.io/library/nginx:1", ["sleep", "60"]]);
    assert.deepEqual(routedBy(pod), ["bar"]);
  });

  const pod = (spec: Record<string, unknown>, metadata: Record<string, unknown> = {}) => ({ apiVersion: "v1", kind: "Pod", metadata, spec });
  const containers = [{ name: "c", image: "busybox" }];
  for (const [what, manifest, problem] of [
    ["sets metadata.name", pod({ containers }, { name: "mine" }), /metadata\.name is set by the provisioner/],
    ["sets schedulingGates", pod({ containers, schedulingGates: [{ name: "example.com/mine" }] }), /spec\.schedulingGates is set by the provisioner/],
    ["sets the gateway label", pod({ containers }, { labels: { setGateway: "bar" } }), /metadata\.labels\["setGateway"\] is set by the provisioner/],
    ["has a field the API does not know", pod({ containers: [{ ...containers[0], notAField: true }] }), /API server would refuse[^\n]*unknown field "spec\.containers\[0\]\.notAField"/],
    ["has an invalid value", pod({ containers: [{ name: "Not_A_Name", image: "busybox" }] }), /API server would refuse[^\n]*spec\.containers\[0\]\.name/],
    // Fail-closed still: a pod bound to a node would skip the scheduler, and with it the routing gate.
    ["sets nodeName", pod({ containers, nodeName: "kwok-node-0" }), /API server would refuse[^\n]*spec\.nodeName: Forbidden/],
    ["is a Deployment", { apiVersion: "apps/v1", kind: "Deployment", spec: {} }, /kind must be Pod or PodTemplate/],
    ["is not YAML", "{", /not one YAML or JSON document/],
  ] as const) {
    test(`a template that ${what}: exit 2 before listening, naming the problem`, async () => {
      const file = templateFile(`bad-${what.replace(/\W+/g, "-")}.yaml`, manifest);
      await assert.rejects(start({ CLIENT_POD_TEMPLATE: file }), (error: Error) => {
        assert.match(error.message, /exited with 2 before listening/);
        assert.match(error.message, new RegExp(`podgateway-provisioner: --client-pod-template \\(CLIENT_POD_TEMPLATE\\) ${file.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}`));
        assert.match(error.message, problem);
        assert.doesNotMatch(error.message, /"msg":"listening"/);
        return true;
      });
    });
  }

  describe("trace context", () => {
    let sink: EventReceiver;
    let service: RunningService;
    let controller: RunningService;
    before(async () => {
      sink = await startReceiver();
      service = await start({});
      // Lifecycle events are the controller's (the service holds no watch).
      controller = await startController({ CLIENT_NAMESPACE: namespace.name, K_SINK: sink.url, CLIENT_LIFECYCLE_EVENTS: "true" });
    });
    after(async () => {
      // The controller put its finalizer on every client pod of the namespace: delete them while it still runs to lift it.
      const kube = await adminClient();
      await kube.performRequest({ method: "DELETE", path: `/api/v1/namespaces/${namespace.name}/pods`, query: { labelSelector: "app.kubernetes.io/managed-by=podgateway-provisioner" } }).catch(() => {});
      await waitFor("the client pods to be gone", async () => (await listPods(namespace.name)).length === 0).catch((error) => console.error(error.message));
      await controller?.stop();
      await service?.stop();
      await sink?.close();
    });

    test("the event's traceparent reaches the done event, the pod's annotation, the log line and the ready and deleted events", async () => {
      const reply = await send(service.url, "trace-1", "foo", { extensions: { traceparent: PARENT, tracestate: "vendor=abc" }, headers: { traceparent: HEADER_PARENT } });
      assert.equal(reply.event?.type, `${T}scheduling.done`, reply.body);
      assert.equal(reply.event?.traceparent, PARENT, "the extension wins over the header");
      assert.equal(reply.event?.tracestate, "vendor=abc");
      const name = reply.event!.data!.pod_name!;
      const pod = (await getPodOrNull(namespace.name, name))!;
      assert.equal(pod.metadata?.annotations?.["podgateway.io/traceparent"], PARENT);
      assert.equal(pod.metadata?.annotations?.["podgateway.io/tracestate"], "vendor=abc");
      await waitFor("the log line of trace-1", async () => service.logs.some((line) => line.msg === "event" && line.id === "trace-1" && line.traceparent === PARENT));

      const lifecycle = (type: string) => sink.events.find((event) => event.subject === name && event.type === `${T}${type}`);
      await waitFor("the ready event", async () => Boolean(lifecycle("ready")));
      assert.equal(lifecycle("ready")?.traceparent, PARENT);
      assert.equal(lifecycle("ready")?.tracestate, "vendor=abc");
      // And as W3C headers of the delivery, for the tracing of whatever receives it (Knative's broker ingress).
      const delivery = sink.headers[sink.events.indexOf(lifecycle("ready")!)];
      assert.deepEqual([delivery?.traceparent, delivery?.tracestate], [PARENT, "vendor=abc"]);
      const kube = await adminClient();
      await kube.performRequest({ method: "DELETE", path: `/api/v1/namespaces/${namespace.name}/pods/${name}`, body: { gracePeriodSeconds: 0 } });
      await waitFor("the deleted event", async () => Boolean(lifecycle("deleted")));
      assert.equal(lifecycle("deleted")?.traceparent, PARENT);
      // The trace id is the same everywhere.
      const traceId = PARENT.split("-")[1];
      for (const event of [reply.event!, lifecycle("ready")!, lifecycle("deleted")!]) assert.equal(String(event.traceparent).split("-")[1], traceId);
    });

    test("without the extension, the W3C traceparent header of the request is carried", async () => {
      const reply = await send(service.url, "trace-2", "bar", { headers: { traceparent: HEADER_PARENT } });
      assert.equal(reply.event?.type, `${T}scheduling.done`, reply.body);
      assert.equal(reply.event?.traceparent, HEADER_PARENT);
      const pod = (await getPodOrNull(namespace.name, reply.event!.data!.pod_name!))!;
      assert.equal(pod.metadata?.annotations?.["podgateway.io/traceparent"], HEADER_PARENT);
    });

    test("no trace context, no trace extensions or annotation", async () => {
      const reply = await send(service.url, "trace-3", "foo");
      assert.equal(reply.event?.traceparent, undefined);
      const pod = (await getPodOrNull(namespace.name, reply.event!.data!.pod_name!))!;
      assert.equal(pod.metadata?.annotations?.["podgateway.io/traceparent"], undefined);
    });
  });
});
