/**
 * The operator's client pod template: what is read, what is refused, how it becomes a client pod. The API
 * server's judgement (dry run) and the webhooks' mutation are tested on the local cluster (test/e2e/pod-template.test.ts).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { stringify } from "yaml";
import { clientPod, DEFAULT_TEMPLATE, ROUTING_GATE } from "../../src/provision/client-pod.ts";
import { loadPodTemplate, parsePodTemplate } from "../../src/provision/pod-template.ts";

const keys = { gatewayLabelKey: "setGateway", gatewayAnnotationKey: "setGateway" };
const request = { source: "/s", id: "1", gatewayName: "foo" };
const spec = {
  serviceAccountName: "client",
  tolerations: [{ key: "dedicated", operator: "Equal", value: "clients", effect: "NoSchedule" }],
  volumes: [{ name: "tmp", emptyDir: {} }],
  containers: [
    { name: "app", image: "busybox", command: ["sleep", "1d"], volumeMounts: [{ name: "tmp", mountPath: "/tmp" }] },
    { name: "helper", image: "busybox" },
  ],
};

test("a Pod or a PodTemplate, in YAML or JSON, gives its metadata and spec", async () => {
  const pod = { apiVersion: "v1", kind: "Pod", metadata: { labels: { team: "a" } }, spec };
  const template = { apiVersion: "v1", kind: "PodTemplate", metadata: { name: "clients" }, template: { metadata: { labels: { team: "a" } }, spec } };
  for (const text of [stringify(pod), JSON.stringify(pod), stringify(template), JSON.stringify(template)]) {
    assert.deepEqual(await parsePodTemplate(text), { metadata: { labels: { team: "a" } }, spec });
  }
});

test("what is not one Pod or PodTemplate is refused with the reason", async () => {
  await assert.rejects(parsePodTemplate("kind: Deployment\napiVersion: apps/v1\n"), /kind must be Pod or PodTemplate/);
  await assert.rejects(parsePodTemplate("apiVersion: v1\nkind: Pod\nspec: {containers: []}\n"), /spec\.containers: must name at least one container/);
  await assert.rejects(parsePodTemplate("apiVersion: v1\nkind: Pod\n---\napiVersion: v1\nkind: Pod\n"), /not one YAML or JSON document/);
  await assert.rejects(parsePodTemplate("{"), /not one YAML or JSON document/);
  await assert.rejects(parsePodTemplate("apiVersion: v1\nkind: Pod\nmetadata: {labels: {a: 1}}\nspec: {containers: [{name: c}]}\n"), /metadata\.labels\.a: must be a string/);
});

test("a template that sets what the provisioner owns is refused, naming every field", async () => {
  const text = stringify({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "x", labels: { setGateway: "bar", "app.kubernetes.io/managed-by": "me" }, annotations: { "podgateway.io/request-id": "1" } },
    spec: { ...spec, schedulingGates: [{ name: "mine" }], activeDeadlineSeconds: 60 },
  });
  const error = await loadPodTemplate("t.yaml", text, { ...keys, activeDeadlineSeconds: 3600 }).then(() => undefined, (error: Error) => error.message);
  assert.match(error ?? "", /^--client-pod-template \(CLIENT_POD_TEMPLATE\) t\.yaml: /);
  for (const field of ["metadata.name", 'labels["setGateway"]', 'labels["app.kubernetes.io/managed-by"]', 'annotations["podgateway.io/request-id"]', "spec.schedulingGates", "spec.activeDeadlineSeconds"]) {
    assert.ok(error?.includes(field), `${field} in: ${error}`);
  }
  // activeDeadlineSeconds is the operator's when --client-max-lifetime-seconds is not set.
  assert.equal((await loadPodTemplate("t.yaml", stringify({ apiVersion: "v1", kind: "Pod", spec: { ...spec, activeDeadlineSeconds: 60 } }), keys)).spec.activeDeadlineSeconds, 60);
});

test("the client pod is the template plus what the provisioner owns; the template itself is untouched", async () => {
  const template = await parsePodTemplate(stringify({ apiVersion: "v1", kind: "Pod", metadata: { labels: { team: "a" }, annotations: { note: "n" } }, spec }));
  const frozen = structuredClone(template);
  const pod = clientPod({ namespace: "clients", template, ...keys, activeDeadlineSeconds: 600 }, request);
  assert.deepEqual(pod.metadata?.labels, {
    team: "a",
    "app.kubernetes.io/name": "podgateway-client",
    "app.kubernetes.io/managed-by": "podgateway-provisioner",
    "app.kubernetes.io/component": "client",
    setGateway: "foo",
  });
  assert.equal(pod.metadata?.annotations?.note, "n");
  assert.equal(pod.metadata?.namespace, "clients");
  assert.deepEqual(pod.spec?.schedulingGates, [{ name: ROUTING_GATE }]);
  assert.equal(pod.spec?.activeDeadlineSeconds, 600);
  assert.deepEqual({ ...pod.spec, schedulingGates: undefined, activeDeadlineSeconds: undefined }, { ...spec, schedulingGates: undefined, activeDeadlineSeconds: undefined });
  assert.deepEqual(template, frozen);
});

test("--client-image and --client-command set the first container's, over the template's or the default's", async () => {
  const template = await parsePodTemplate(stringify({ apiVersion: "v1", kind: "Pod", spec }));
  const both = clientPod({ namespace: "n", template, image: "nginx", command: ["run"], ...keys }, request).spec!.containers;
  assert.deepEqual([both[0]!.image, both[0]!.command, both[1]!.image], ["nginx", ["run"], "busybox"]);
  const none = clientPod({ namespace: "n", template, image: "", ...keys }, request).spec!.containers;
  assert.deepEqual([none[0]!.image, none[0]!.command], ["busybox", ["sleep", "1d"]]);
  const byDefault = clientPod({ namespace: "n", ...keys }, request).spec!;
  assert.deepEqual(byDefault.containers, DEFAULT_TEMPLATE.spec.containers);
  assert.equal(byDefault.automountServiceAccountToken, false);
  assert.deepEqual(template.spec.containers[0]!.image, "busybox");
});
