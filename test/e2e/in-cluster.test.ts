/**
 * deploy/ as shipped, for real on the real node: the provisioner (service mode: the Knative Service, a revision of
 * Knative Serving) and its controller (the shipped Deployment, two replicas, leader-elected) run as pods of our
 * FROM-scratch image pulled from the local registry, with in-cluster configuration from their projected
 * ServiceAccount tokens and the shipped RBAC. The broker's Trigger delivers to the Knative Service's address (Kourier,
 * then the revision's queue-proxy); the SinkBindings give both K_SINK and their OIDC tokens.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { waitFor } from "../support/cluster.ts";
import { CLIENT_NS, CONTROLLER, kubectl, PROVISIONER, SERVICE_NS, type Sink } from "../support/knative.ts";
import { type ServingFlow, startServingFlow } from "../support/serving.ts";
import { askEcho, containerProcess, gatewayPod, nodeEnv, provisionThroughBroker } from "../support/real-node.ts";

/** The pods a selector names, terminating ones (an earlier revision's, a rolled ReplicaSet's) left out. */
const pods = (selector: string): string[] =>
  JSON.parse(kubectl("get", "pods", "-n", SERVICE_NS, "-l", selector, "-o", "json")).items
    .filter((p: { metadata: { deletionTimestamp?: string } }) => !p.metadata.deletionTimestamp)
    .map((p: { metadata: { name: string } }) => p.metadata.name);

/** The logs of `container` in the running pods a selector names. */
const logsOf = (selector: string, container: string): string =>
  JSON.parse(kubectl("get", "pods", "-n", SERVICE_NS, "-l", selector, "-o", "json")).items
    .filter((p: { status: { containerStatuses?: { name: string; state: { running?: unknown } }[] } }) =>
      p.status.containerStatuses?.some((c) => c.name === container && c.state.running))
    .map((p: { metadata: { name: string } }) => kubectl("logs", "-n", SERVICE_NS, p.metadata.name, "-c", container, "--tail=-1"))
    .join("\n");

describe("deploy/ on the real node: our image runs the provisioner and its controller", { timeout: 600_000 }, () => {
  let flow: ServingFlow;
  let sink: Sink;

  before(async () => {
    flow = await startServingFlow({ shippedController: true });
    sink = flow.sink;
  });
  after(() => flow?.stop());

  test("an event through the broker: the provisioner pod makes a routed client; the controller pod tells it ready", async () => {
    const pod = await provisionThroughBroker(sink, "foo");
    const seen = askEcho(CLIENT_NS, pod);
    assert.ok(seen.ok, `request failed: ${!seen.ok && seen.error}`);
    assert.equal(seen.remote_address, gatewayPod("foo")!.ip);
    await waitFor(`io.podgateway.client.ready for ${pod} at the sink (the in-cluster controller, K_SINK with its OIDC token)`, async () =>
      (await sink.events()).some((e) => e.ContextAttributes.type === "io.podgateway.client.ready" && e.ContextAttributes.subject === pod), 120_000)
      .catch((error) => {
        throw new Error(`${error.message}\ncontroller logs:\n${logsOf(`app.kubernetes.io/name=${CONTROLLER}`, "controller").slice(-4000)}`);
      });
    // the latest revision's running pods only: an earlier revision's pod (before the SinkBinding) may be going, and
    // a pod the autoscaler just added may not have started its container yet (kubectl logs -l then fails)
    assert.match(logsOf(`serving.knative.dev/service=${PROVISIONER}`, "provisioner"), new RegExp(pod), "the provisioner pod logged the client it made");
  });
  // right after the event: the revision has a pod until it has been idle for a while (scale to zero)
  test("both modes run as pods of our image on the real node: Ready, uid 65532, read-only root", () => {
    const revision = kubectl("get", "services.serving.knative.dev", PROVISIONER, "-n", SERVICE_NS, "-o", "jsonpath={.status.latestReadyRevisionName}");
    const running = [...pods(`serving.knative.dev/revision=${revision}`), ...pods(`app.kubernetes.io/name=${CONTROLLER}`)];
    assert.equal(running.length, 3, `one provisioner and two controller pods, not ${running.join(", ")}`);
    for (const pod of running) {
      const info = JSON.parse(kubectl("get", "pod", "-n", SERVICE_NS, pod, "-o", "json"));
      assert.equal(info.spec.nodeName, nodeEnv().name, pod);
      assert.match(info.spec.containers[0].image, /^127\.0\.0\.1:5001\/podgateway-provisioner:/, pod);
      assert.ok(info.status.conditions.some((c: { type: string; status: string }) => c.type === "Ready" && c.status === "True"), `${pod} not Ready`);
      assert.ok(!info.spec.containers[0].env?.some((e: { name: string }) => e.name === "KUBECONFIG"), "in-cluster configuration only");
      const process = containerProcess(SERVICE_NS, pod);
      assert.equal(process.uid, 65532, pod);
      assert.equal(process.readOnlyRoot, true, pod);
    }
  });
});
