/**
 * deploy/ as shipped, for real on the real node: the provisioner (service mode, behind the Serving stand-in) and
 * its controller (the shipped Deployment, two replicas, leader-elected) run as pods of our FROM-scratch image
 * pulled from the local registry, with in-cluster configuration from their projected ServiceAccount tokens and the
 * shipped RBAC. The broker's Trigger delivers to the provisioner's Service; the controller's SinkBinding gives it
 * K_SINK and its OIDC token.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { clusterEnv, repo, waitFor } from "../support/cluster.ts";
import {
  applyDeploy, awaitDelivery, brokerToken, CLIENT_NS, CONTROLLER, kubectl, PLAYER, PROVISIONER, removeDeploy, SERVICE_NS,
  setServiceAddress, type Sink, startSink, waitReady,
} from "../support/knative.ts";
import { askEcho, containerProcess, gatewayPod, nodeEnv, provisionThroughBroker } from "../support/real-node.ts";

const pods = (selector: string) =>
  kubectl("get", "pods", "-n", SERVICE_NS, "-l", selector, "-o", "jsonpath={range .items[*]}{.metadata.name}{\"\\n\"}{end}").split("\n").filter(Boolean);

describe("deploy/ on the real node: our image runs the provisioner and its controller", { timeout: 600_000 }, () => {
  let sink: Sink;

  before(async () => {
    await applyDeploy({ shippedController: true });
    sink = await startSink();
    setServiceAddress(PLAYER, sink.url);
    await waitFor("the provisioner's SinkBinding to be ready", async () =>
      kubectl("get", "sinkbindings.sources.knative.dev", PROVISIONER, "-n", SERVICE_NS, "-o", "jsonpath={.status.sinkUri}") !== "", 60_000);
    const { KUBECTL, KUBECONFIG } = clusterEnv();
    execFileSync(join(repo, "node_modules/.bin/node"), [join(repo, "cluster/serving-standin.ts"), SERVICE_NS, PROVISIONER],
      { stdio: "inherit", env: { ...process.env, KUBECTL, KUBECONFIG } });
    kubectl("rollout", "status", "-n", SERVICE_NS, `deployment/${CONTROLLER}`, "--timeout=180s");
    await waitReady("triggers.eventing.knative.dev", PROVISIONER);
    await brokerToken();
    await awaitDelivery(sink);
  });
  after(async () => {
    await sink?.stop();
    removeDeploy();
  });

  test("both modes run as pods of our image on the real node: Ready, uid 65532, read-only root", () => {
    const running = [...pods(`app.kubernetes.io/name=${PROVISIONER}`), ...pods(`app.kubernetes.io/name=${CONTROLLER}`)];
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

  test("an event through the broker: the provisioner pod makes a routed client; the controller pod tells it ready", async () => {
    const pod = await provisionThroughBroker(sink, "foo");
    const seen = askEcho(CLIENT_NS, pod);
    assert.ok(seen.ok, `request failed: ${!seen.ok && seen.error}`);
    assert.equal(seen.remote_address, gatewayPod("foo")!.ip);
    await waitFor(`io.podgateway.client.ready for ${pod} at the sink (the in-cluster controller, K_SINK with its OIDC token)`, async () =>
      (await sink.events()).some((e) => e.ContextAttributes.type === "io.podgateway.client.ready" && e.ContextAttributes.subject === pod), 120_000);
    const log = kubectl("logs", "-n", SERVICE_NS, `deployment/${PROVISIONER}-standin`);
    assert.match(log, new RegExp(pod), "the provisioner pod logged the client it made");
  });
});
