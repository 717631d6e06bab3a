import assert from "node:assert/strict";
import { test } from "node:test";
import { clientPod, clientPodName, ROUTING_GATE } from "../../src/provision/client-pod.ts";

const settings = {
  namespace: "clients",
  image: "alpine/curl",
  command: ["sleep", "infinity"],
  gatewayLabelKey: "setGateway",
  gatewayAnnotationKey: "setGateway",
};

test("the pod name is a pure function of (source, id) and a valid DNS label", () => {
  const a = clientPodName({ source: "/s", id: "1" });
  assert.equal(a, clientPodName({ source: "/s", id: "1" }));
  assert.notEqual(a, clientPodName({ source: "/s", id: "2" }));
  assert.notEqual(a, clientPodName({ source: "/t", id: "1" }));
  // The separator keeps ("/s1", "") and ("/s", "1") apart.
  assert.notEqual(clientPodName({ source: "/s1", id: "" }), clientPodName({ source: "/s", id: "1" }));
  assert.match(a, /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);
});

test("the client pod is gated, labelled for its gateway and locked down", () => {
  const pod = clientPod(settings, { source: "/s", id: "1", gatewayName: "foo" });
  assert.deepEqual(pod.spec?.schedulingGates, [{ name: ROUTING_GATE }]);
  assert.equal(pod.metadata?.labels?.setGateway, "foo");
  assert.equal(pod.metadata?.annotations?.setGateway, "foo");
  assert.equal(pod.metadata?.labels?.["app.kubernetes.io/managed-by"], "podgateway-provisioner");
  assert.equal(pod.metadata?.annotations?.["podgateway.io/request-source"], "/s");
  assert.equal(pod.metadata?.annotations?.["podgateway.io/request-id"], "1");
  assert.equal(pod.metadata?.namespace, "clients");
  assert.equal(pod.spec?.automountServiceAccountToken, false);
  const [container] = pod.spec?.containers ?? [];
  assert.equal(container?.image, "alpine/curl");
  assert.deepEqual(container?.command, ["sleep", "infinity"]);
  assert.equal(container?.securityContext?.allowPrivilegeEscalation, false);
  assert.deepEqual(container?.securityContext?.capabilities?.drop, ["ALL"]);
  assert.equal(pod.spec?.hostNetwork, undefined);
  assert.equal(pod.spec?.volumes, undefined);
});

test("an empty label or annotation key leaves that one out", () => {
  const pod = clientPod({ ...settings, gatewayLabelKey: "" }, { source: "/s", id: "1", gatewayName: "foo" });
  assert.equal(pod.metadata?.labels?.setGateway, undefined);
  assert.equal(pod.metadata?.annotations?.setGateway, "foo");
});
