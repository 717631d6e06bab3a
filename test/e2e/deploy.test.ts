/**
 * deploy/ is what a cluster admin applies. Every Kubernetes manifest in it must be accepted by the local
 * cluster's API server (server-side dry-run, strict field validation, against the Knative CRDs the cluster
 * installs from ../shared/knative-crds), and must say what the project promises (least-privilege RBAC,
 * locked-down container, Trigger on io.podgateway.client.pending with retries honouring Retry-After). The pod-gateway
 * chart values are not Kubernetes objects: they are parsed and their keys checked.
 *
 * Needs the local cluster (`npm run cluster -- up`). Without it the cluster tests FAIL, they never skip.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { parse, parseAllDocuments } from "yaml";
import { DEFAULT_TEMPLATE } from "../../src/provision/client-pod.ts";
import { checkOnServer, loadPodTemplate } from "../../src/provision/pod-template.ts";
import { adminClient, type ClusterEnv, clusterEnv, routedBy } from "../support/cluster.ts";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const deployDir = join(repo, "deploy");
/** The local cluster's overlay of deploy/ (kustomize refuses an overlay inside its base). */
const localOverlay = join(repo, "cluster/deploy");

// deno-lint-ignore no-explicit-any
type Obj = Record<string, any>;

const SERVICE_NS = "podgateway";
const CLIENT_NS = "podgateway-clients";
const MANIFESTS = ["namespace.yaml", "broker.yaml", "rbac.yaml", "service.yaml", "controller.yaml", "network-policy.yaml", "cloudevents-player.yaml"];
const CHART_VALUES: Record<string, string> = { "pod-gateway-foo-values.yaml": "foo", "pod-gateway-bar-values.yaml": "bar" };
/** Kustomize's own files, and the client pod template it turns into a ConfigMap. */
const KUSTOMIZE = ["kustomization.yaml", "kustomizeconfig.yaml"];
const TEMPLATE = "client-pod-template.yaml";
const TEMPLATE_CONFIGMAP = "podgateway-client-pod-template";

function yamlFiles(): string[] {
  return readdirSync(deployDir).filter((name) => name.endsWith(".yaml") || name.endsWith(".yml")).sort();
}

function objects(file: string): Obj[] {
  return parseAllDocuments(readFileSync(join(deployDir, file), "utf8"))
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join("; ")}`);
      return doc.toJS() as Obj | null;
    })
    .filter((o): o is Obj => o !== null);
}

function find(file: string, kind: string, apiVersionPrefix = ""): Obj {
  const found = objects(file).filter((o) => o.kind === kind && String(o.apiVersion).startsWith(apiVersionPrefix));
  assert.equal(found.length, 1, `${file}: expected exactly one ${apiVersionPrefix}${kind}, found ${found.length}`);
  return found[0]!;
}

// ------------------------------------------------------------------------------------------------
// Without a cluster: the files are what they claim to be.

describe("deploy/ files (static)", () => {
  test("every YAML file in deploy/ is an applied manifest, pod-gateway chart values, kustomize's or the client pod template", () => {
    assert.deepEqual(yamlFiles(), [...MANIFESTS, ...Object.keys(CHART_VALUES), ...KUSTOMIZE, TEMPLATE].sort());
    for (const file of MANIFESTS) {
      for (const o of objects(file)) {
        assert.ok(o.apiVersion && o.kind && o.metadata?.name, `${file}: every document is a Kubernetes object`);
        if (!/^(Namespace|ClusterRole|ClusterRoleBinding)$/.test(o.kind)) assert.ok(o.metadata.namespace, `${file}: ${o.kind}/${o.metadata.name} names its namespace`);
      }
    }
  });

  test("namespaces: the client namespace is selected by the pod-gateway webhooks, the others are not", () => {
    const namespaces = Object.fromEntries(objects("namespace.yaml").map((o) => [o.metadata.name, o.metadata.labels ?? {}]));
    assert.deepEqual(Object.keys(namespaces).sort(), [SERVICE_NS, CLIENT_NS, "podgateway-gateways"].sort());
    assert.equal(namespaces[CLIENT_NS]["routed-gateway"], "true");
    assert.equal(namespaces[SERVICE_NS]["routed-gateway"], undefined);
    assert.equal(namespaces["podgateway-gateways"]["routed-gateway"], undefined);
  });

  test("rbac: each mode its ServiceAccount and a Role in the client namespace with exactly the verbs it uses; cluster-wide only TokenReview", () => {
    const all = objects("rbac.yaml");
    assert.deepEqual(all.map((o) => o.kind).sort(), ["ClusterRole", "ClusterRoleBinding", "Role", "Role", "RoleBinding", "RoleBinding", "ServiceAccount", "ServiceAccount"]);
    for (const file of MANIFESTS.filter((name) => name !== "rbac.yaml")) {
      for (const o of objects(file)) assert.ok(!/^Cluster/.test(o.kind), `${file}: no ${o.kind}`);
    }
    const byName = (kind: string, name: string) => all.find((o) => o.kind === kind && o.metadata.name === name)!;
    const rules: Record<string, unknown> = {
      "podgateway-provisioner": [{ apiGroups: [""], resources: ["pods"], verbs: ["create", "get", "patch", "delete", "list", "watch"] }],
      "podgateway-provisioner-controller": [
        { apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch", "patch", "delete"] },
        { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["get", "create", "update"] },
      ],
    };
    for (const [name, expected] of Object.entries(rules)) {
      const role = byName("Role", name);
      assert.equal(role.metadata.namespace, CLIENT_NS);
      assert.deepEqual(role.rules, expected);
      const binding = byName("RoleBinding", name);
      assert.equal(binding.metadata.namespace, CLIENT_NS);
      assert.deepEqual(binding.roleRef, { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name });
      assert.deepEqual(binding.subjects, [{ kind: "ServiceAccount", name: byName("ServiceAccount", name).metadata.name, namespace: SERVICE_NS }]);
    }
    assert.deepEqual(find("rbac.yaml", "ClusterRole").rules, [{ apiGroups: ["authentication.k8s.io"], resources: ["tokenreviews"], verbs: ["create"] }]);
    assert.deepEqual(find("rbac.yaml", "ClusterRoleBinding").subjects, [{ kind: "ServiceAccount", name: "podgateway-provisioner", namespace: SERVICE_NS }]);
  });

  test("secure by default: sender authentication on for the Trigger's identity and audience; a NetworkPolicy", () => {
    const env = Object.fromEntries(find("service.yaml", "Service", "serving.knative.dev/").spec.template.spec.containers[0].env.map((e: Obj) => [e.name, e.value]));
    const trigger = find("service.yaml", "Trigger");
    assert.equal(env.OIDC_AUDIENCE, trigger.spec.subscriber.audience);
    assert.equal(env.ALLOWED_SENDERS, `system:serviceaccount:${SERVICE_NS}:${trigger.metadata.name}-oidc-eventing.knative.dev-trigger`);
    const policies = objects("network-policy.yaml");
    const service = policies.find((o) => o.metadata.name === "podgateway-provisioner")!;
    assert.deepEqual(service.spec.podSelector.matchLabels, { "app.kubernetes.io/name": "podgateway-provisioner" });
    assert.ok(service.spec.ingress[0].from.some((from: Obj) => from.namespaceSelector.matchLabels["kubernetes.io/metadata.name"] === "knative-eventing"));
  });

  test("controller: a Deployment of 2 replicas running `controller` with its own ServiceAccount, K_SINK from a SinkBinding", () => {
    const deployment = find("controller.yaml", "Deployment");
    assert.equal(deployment.spec.replicas, 2);
    const spec = deployment.spec.template.spec;
    assert.equal(spec.serviceAccountName, "podgateway-provisioner-controller");
    assert.deepEqual(spec.containers[0].args, ["controller"]);
    const env = Object.fromEntries(spec.containers[0].env.map((e: Obj) => [e.name, e.value ?? e.valueFrom]));
    assert.equal(env.CLIENT_LIFECYCLE_EVENTS, "true");
    assert.deepEqual(env.POD_NAME, { fieldRef: { fieldPath: "metadata.name" } });
    assert.deepEqual(find("controller.yaml", "SinkBinding").spec.subject, { apiVersion: "apps/v1", kind: "Deployment", name: deployment.metadata.name });
  });

  test("service: Knative Service on PORT 8080, probes, resources, locked-down container, client config", () => {
    const ksvc = find("service.yaml", "Service", "serving.knative.dev/");
    assert.equal(ksvc.metadata.namespace, SERVICE_NS);
    const spec = ksvc.spec.template.spec;
    assert.equal(spec.serviceAccountName, "podgateway-provisioner");
    assert.equal(spec.containers.length, 1);
    const c = spec.containers[0];
    assert.equal(c.image, "podgateway-provisioner", "an overlay sets the image (cluster/deploy: the local registry)");
    assert.deepEqual(c.ports, [{ name: "http1", containerPort: 8080 }]);
    assert.equal(c.readinessProbe.httpGet.path, "/readyz");
    assert.equal(c.livenessProbe.httpGet.path, "/healthz");
    assert.ok(c.resources.requests.cpu && c.resources.requests.memory && c.resources.limits.memory);
    assert.deepEqual(c.securityContext, {
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    });
    const env = Object.fromEntries(c.env.map((e: Obj) => [e.name, e.value]));
    assert.equal(env.CLIENT_NAMESPACE, CLIENT_NS);
    // The client pod comes from the template ConfigMap, mounted read-only.
    const volume = spec.volumes.find((v: Obj) => v.configMap?.name === TEMPLATE_CONFIGMAP);
    const mount = c.volumeMounts.find((m: Obj) => m.name === volume?.name);
    assert.ok(mount?.readOnly, "the template ConfigMap is mounted read-only");
    assert.equal(env.CLIENT_POD_TEMPLATE, `${mount.mountPath}/${TEMPLATE}`);
    assert.equal(env.PORT, undefined, "Knative sets PORT");
    assert.equal(env.K_SINK, undefined, "K_SINK comes from Knative (the SinkBinding)");
    // K_SINK: the SinkBinding binds this very Service to the Broker.
    const binding = find("service.yaml", "SinkBinding");
    assert.deepEqual(binding.spec.subject, { apiVersion: "serving.knative.dev/v1", kind: "Service", name: ksvc.metadata.name });
    assert.equal(binding.spec.sink.ref.kind, "Broker");
    assert.equal(binding.spec.sink.ref.name, find("broker.yaml", "Broker").metadata.name);
  });

  test("kustomization: the five manifests, and the template ConfigMap from client-pod-template.yaml", () => {
    const kustomization = parse(readFileSync(join(deployDir, "kustomization.yaml"), "utf8")) as Obj;
    assert.deepEqual(kustomization.resources, MANIFESTS);
    assert.deepEqual(kustomization.configMapGenerator.map((g: Obj) => [g.name, g.namespace, g.files]), [[TEMPLATE_CONFIGMAP, SERVICE_NS, [TEMPLATE]]]);
    const local = parse(readFileSync(join(localOverlay, "kustomization.yaml"), "utf8")) as Obj;
    assert.deepEqual(local.resources, ["../../deploy"]);
    assert.deepEqual(local.images, [
      { name: "podgateway-provisioner", newName: "127.0.0.1:5001/podgateway-provisioner", newTag: "latest" },
      // cluster/player.sh's image
      { name: "cloudevents-player", newName: "127.0.0.1:5001/podgateway/cloudevents-player", newTag: "latest" },
    ]);
  });

  test("client-pod-template.yaml: a template the provisioner accepts, the locked-down default plus resources and /tmp", async () => {
    const env = Object.fromEntries(find("service.yaml", "Service", "serving.knative.dev/").spec.template.spec.containers[0].env.map((e: Obj) => [e.name, e.value]));
    const template = await loadPodTemplate(TEMPLATE, readFileSync(join(deployDir, TEMPLATE), "utf8"), {
      gatewayLabelKey: env.GATEWAY_LABEL,
      gatewayAnnotationKey: env.GATEWAY_ANNOTATION,
    });
    const [client] = template.spec.containers;
    assert.deepEqual(client!.securityContext, DEFAULT_TEMPLATE.spec.containers[0]!.securityContext);
    assert.ok(client!.resources?.requests?.memory && client!.resources?.limits?.memory);
    assert.ok(client!.volumeMounts?.some((m) => m.mountPath === "/tmp"));
    assert.equal(template.spec.automountServiceAccountToken, false);
  });

  test("trigger: io.podgateway.client.pending from the Broker to the service, retries that outlast an API restart", () => {
    const trigger = find("service.yaml", "Trigger");
    assert.equal(trigger.spec.broker, find("broker.yaml", "Broker").metadata.name);
    assert.deepEqual(trigger.spec.filter, { attributes: { type: "io.podgateway.client.pending" } });
    assert.deepEqual(trigger.spec.subscriber.ref, {
      apiVersion: "serving.knative.dev/v1",
      kind: "Service",
      name: find("service.yaml", "Service", "serving.knative.dev/").metadata.name,
    });
    const { retry, backoffPolicy, backoffDelay, retryAfterMax } = trigger.spec.delivery;
    assert.ok(retry >= 3);
    assert.match(backoffDelay, /^PT[0-9.]+S$/);
    // long enough to outlast an API server restart (~30 s), and the service's Retry-After honoured
    const delay = Number(/^PT([0-9.]+)S$/.exec(backoffDelay)![1]);
    const total = Array.from({ length: retry }, (_, n) => (backoffPolicy === "linear" ? delay * (n + 1) : delay * 2 ** n))
      .reduce((a, b) => a + b, 0);
    assert.ok(["linear", "exponential"].includes(backoffPolicy) && total >= 30, `${retry} ${backoffPolicy} retries from ${backoffDelay}: ${total} s`);
    assert.match(retryAfterMax, /^PT[0-9.]+S$/);
  });

  test("cloudevents-player: a Knative Service and an unfiltered Trigger on the same Broker", () => {
    const player = find("cloudevents-player.yaml", "Service", "serving.knative.dev/");
    const trigger = find("cloudevents-player.yaml", "Trigger");
    assert.equal(trigger.spec.broker, find("broker.yaml", "Broker").metadata.name);
    assert.equal(trigger.spec.subscriber.ref.name, player.metadata.name);
    assert.equal(trigger.spec.filter, undefined);
    // the player reads BROKER_URI (upstream's MessageService); BROKER_TOKEN_FILE is cluster/player.sh's addition
    const env = Object.fromEntries(player.spec.template.spec.containers[0].env.map((e: Obj) => [e.name, e.value]));
    assert.equal(env.BROKER_URI, `http://broker-ingress.knative-eventing.svc.cluster.local/${SERVICE_NS}/default`);
    assert.equal(player.metadata.annotations, undefined);
    assert.deepEqual(player.spec.template.metadata.annotations, { "autoscaling.knative.dev/min-scale": "1", "autoscaling.knative.dev/max-scale": "1" });
    // OIDC: a token of its own ServiceAccount (no API access) for the Broker's audience, where BROKER_TOKEN_FILE says
    const spec = player.spec.template.spec;
    const account = find("cloudevents-player.yaml", "ServiceAccount");
    assert.equal(spec.serviceAccountName, account.metadata.name);
    assert.equal(account.automountServiceAccountToken, false);
    assert.equal(spec.automountServiceAccountToken, false);
    const mount = spec.containers[0].volumeMounts.find((m: Obj) => env.BROKER_TOKEN_FILE.startsWith(`${m.mountPath}/`));
    const projected = spec.volumes.find((v: Obj) => v.name === mount.name).projected.sources[0].serviceAccountToken;
    assert.equal(`${mount.mountPath}/${projected.path}`, env.BROKER_TOKEN_FILE);
    assert.equal(projected.audience, `eventing.knative.dev/broker/${SERVICE_NS}/default`);
    assert.equal(spec.containers[0].securityContext.readOnlyRootFilesystem, true);
    assert.equal(spec.containers[0].securityContext.runAsNonRoot, true);
  });

  for (const [file, gateway] of Object.entries(CHART_VALUES)) {
    test(`${file}: pod-gateway chart values route setGateway=${gateway} pods of the client namespace, nothing by default`, () => {
      const values = parse(readFileSync(join(deployDir, file), "utf8")) as Obj;
      assert.deepEqual(values.webhook, {
        namespaceSelector: { type: "label", label: "routed-gateway" },
        gatewayDefault: false,
        gatewayLabel: "setGateway",
        gatewayLabelValue: gateway,
        gatewayAnnotation: "setGateway",
        gatewayAnnotationValue: gateway,
      });
      assert.deepEqual(values.routed_namespaces, [CLIENT_NS]);
      // DNS must be the gateway's address in its own VXLAN network.
      assert.equal(values.DNS, `${values.settings.VXLAN_IP_NETWORK}.1`);
      assert.equal(typeof values.settings.VXLAN_ID, "number");
    });
  }

  test("pod-gateway values: each gateway has its own VXLAN id and network", () => {
    const settings = Object.keys(CHART_VALUES).map((file) => (parse(readFileSync(join(deployDir, file), "utf8")) as Obj).settings);
    assert.equal(new Set(settings.map((s) => s.VXLAN_ID)).size, settings.length);
    assert.equal(new Set(settings.map((s) => s.VXLAN_IP_NETWORK)).size, settings.length);
  });
});

// ------------------------------------------------------------------------------------------------
// With the local cluster: the API server accepts every manifest.

describe("deploy/ on the local cluster (server-side dry-run)", () => {
  let cluster: ClusterEnv;
  let created: string[] = [];
  let accounts: Obj[] = [];
  let scratch: string;

  const kubectl = (...args: string[]) =>
    spawnSync(cluster.KUBECTL, args, { encoding: "utf8", env: { ...process.env, KUBECONFIG: cluster.KUBECONFIG } });

  before(() => {
    cluster = clusterEnv();
    const version = kubectl("version", "-o", "json");
    assert.equal(version.status, 0, `the API server does not answer: ${version.stderr}`);
    scratch = mkdtempSync(join(tmpdir(), "deploy-test-"));
    // Namespaced objects can only be dry-run into namespaces that exist: create the missing ones
    // for real (and remove them afterwards), everything else is dry-run only.
    const wanted = objects("namespace.yaml").map((o) => o.metadata.name as string);
    // A namespace still terminating (from an earlier run) refuses new objects: wait until it is gone.
    const deadline = Date.now() + 90_000;
    while (wanted.some((name) => kubectl("get", "namespace", name, "-o", "jsonpath={.status.phase}").stdout === "Terminating")) {
      if (Date.now() > deadline) throw new Error(`namespaces ${wanted.join(", ")} are still terminating after 90 s`);
      spawnSync("sleep", ["1"]);
    }
    created = wanted.filter((name) => kubectl("get", "namespace", name).status !== 0);
    const apply = kubectl("apply", "--server-side", "--field-manager=deploy-test", "-f", join(deployDir, "namespace.yaml"));
    assert.equal(apply.status, 0, `applying deploy/namespace.yaml failed: ${apply.stderr}`);
    // Knative Serving's webhook validates a Knative Service by dry-running its pod, which needs its ServiceAccount
    // (the player's is in its own file)
    accounts = [...objects("rbac.yaml"), ...objects("cloudevents-player.yaml")].filter((o) => o.kind === "ServiceAccount" &&
      kubectl("get", "serviceaccount", o.metadata.name, "-n", o.metadata.namespace).status !== 0);
    writeFileSync(join(scratch, "accounts.json"), JSON.stringify({ kind: "List", apiVersion: "v1", items: accounts }));
    const made = kubectl("apply", "--server-side", "--field-manager=deploy-test", "-f", join(scratch, "accounts.json"));
    assert.equal(made.status, 0, `creating deploy/rbac.yaml's ServiceAccounts failed: ${made.stderr}`);
  });

  after(() => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
    for (const account of accounts) kubectl("delete", "serviceaccount", account.metadata.name, "-n", account.metadata.namespace, "--ignore-not-found");
    if (cluster && created.length > 0) {
      const removed = kubectl("delete", "namespace", "--wait=false", "--ignore-not-found", ...created);
      if (removed.status !== 0) console.error(`could not remove the namespaces this test created (${created.join(", ")}): ${removed.stderr}`);
    }
  });

  test("the cluster serves the Knative CRDs the manifests use (Serving, Eventing, SinkBinding)", () => {
    for (const crd of ["services.serving.knative.dev", "brokers.eventing.knative.dev", "triggers.eventing.knative.dev", "sinkbindings.sources.knative.dev"]) {
      const got = kubectl("get", "crd", crd, "-o", "jsonpath={.status.conditions[?(@.type==\"Established\")].status}");
      assert.equal(got.status, 0, `CRD ${crd} is not installed in the local cluster: ${got.stderr}`);
      assert.equal(got.stdout, "True", `CRD ${crd} is not Established`);
    }
  });

  for (const file of MANIFESTS) {
    test(`${file} is accepted by the API server (apply --dry-run=server, strict field validation)`, () => {
      const result = kubectl("apply", "--dry-run=server", "--validate=strict", "-f", join(deployDir, file));
      assert.equal(result.status, 0, `${file} was rejected:\n${result.stderr}${result.stdout}`);
      const lines = result.stdout.trim().split("\n");
      assert.equal(lines.length, objects(file).length, result.stdout);
      for (const line of lines) assert.match(line, /\(server dry run\)$/);
    });
  }

  test("kubectl kustomize deploy/: the manifests plus the template ConfigMap, which the Knative Service mounts by its hashed name", () => {
    const built = kubectl("kustomize", deployDir);
    assert.equal(built.status, 0, built.stderr);
    const rendered = parseAllDocuments(built.stdout).map((doc) => doc.toJS() as Obj);
    assert.equal(rendered.length, MANIFESTS.flatMap(objects).length + 1);
    const configMap = rendered.find((o) => o.kind === "ConfigMap")!;
    assert.match(configMap.metadata.name, new RegExp(`^${TEMPLATE_CONFIGMAP}-[a-z0-9]+$`));
    assert.equal(configMap.metadata.namespace, SERVICE_NS);
    assert.deepEqual(configMap.data, { [TEMPLATE]: readFileSync(join(deployDir, TEMPLATE), "utf8") });
    const ksvc = rendered.find((o) => o.kind === "Service" && o.metadata.name === "podgateway-provisioner")!;
    assert.ok(ksvc.spec.template.spec.volumes.some((v: Obj) => v.configMap?.name === configMap.metadata.name), "the volume follows the generated name");

    const local = kubectl("kustomize", localOverlay);
    assert.equal(local.status, 0, local.stderr);
    const localKsvc = parseAllDocuments(local.stdout).map((doc) => doc.toJS() as Obj).find((o) => o.kind === "Service" && o.metadata.name === "podgateway-provisioner")!;
    assert.equal(localKsvc.spec.template.spec.containers[0].image, "127.0.0.1:5001/podgateway-provisioner:latest");
  });

  for (const dir of [deployDir, localOverlay]) {
    test(`kubectl apply -k ${dir.slice(repo.length + 1)}/ --dry-run=server passes (strict field validation)`, () => {
      const result = kubectl("apply", "-k", dir, "--dry-run=server", "--validate=strict");
      assert.equal(result.status, 0, `rejected:\n${result.stderr}${result.stdout}`);
      const lines = result.stdout.trim().split("\n");
      assert.equal(lines.length, MANIFESTS.flatMap(objects).length + 1, result.stdout);
      for (const line of lines) assert.match(line, /\(server dry run\)$/);
      assert.ok(lines.some((line) => line.startsWith(`configmap/${TEMPLATE_CONFIGMAP}-`)), result.stdout);
    });
  }

  test("a client pod made from client-pod-template.yaml is accepted in the client namespace and routed by foo (dry run)", async () => {
    const template = await loadPodTemplate(TEMPLATE, readFileSync(join(deployDir, TEMPLATE), "utf8"), { gatewayLabelKey: "setGateway", gatewayAnnotationKey: "setGateway" });
    // Pods need the namespace's default ServiceAccount, which the controller-manager makes soon after the namespace.
    const deadline = Date.now() + 30_000;
    while (kubectl("get", "serviceaccount", "default", "-n", CLIENT_NS).status !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    const pod = await checkOnServer(await adminClient(), { namespace: CLIENT_NS, template, gatewayLabelKey: "setGateway", gatewayAnnotationKey: "setGateway" }, "foo");
    assert.deepEqual(routedBy(pod), ["foo"]);
  });

  test("the dry-run really validates: an unknown field in the Knative Service is rejected", () => {
    const ksvc = structuredClone(find("service.yaml", "Service", "serving.knative.dev/"));
    ksvc.spec.template.spec.containers[0].notAField = true;
    const file = join(scratch, "bad-service.json");
    writeFileSync(file, JSON.stringify(ksvc));
    const result = kubectl("apply", "--dry-run=server", "--validate=strict", "-f", file);
    assert.notEqual(result.status, 0, `an invalid Knative Service was accepted:\n${result.stdout}`);
    assert.match(result.stderr, /notAField/);
  });
});

