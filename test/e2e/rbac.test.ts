/**
 * deploy/rbac.yaml is enough and no more, for real: with the real tokens of its two ServiceAccounts the service
 * (sender authentication on, as shipped) provisions a routed client pod and the controller leads, delivers and
 * keeps its finalizer — no 403 anywhere; the same identities are forbidden everything else; a missing rule
 * stops start-up with exit 2 naming it; a rule revoked under a running service fails the event, never 500,
 * and leaves no pod.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { CloudEvent, HTTP } from "cloudevents";
import { KubeApiError } from "../../src/kube/errors.ts";
import { HttpRestClient } from "../../src/kube/http-client.ts";
import type { RestClient } from "../../src/kube/rest-client.ts";
import { adminClient, clusterEnv, clusterKubeconfig, getPodOrNull, repo, serviceAccountKubeconfig, serviceAccountToken, waitFor } from "../support/cluster.ts";
import { replyEvent } from "../support/received.ts";
import { NAMESPACES_GONE_MS } from "../support/knative.ts";
import { type EventReceiver, startReceiver } from "../support/event-receiver.ts";
import { fetcherFactory, testedServiceCommand } from "../support/runtime.ts";
import { removeFinalizers, type RunningService, startController, startService } from "../support/service.ts";

const SERVICE_NS = "podgateway";
const CLIENT_NS = "podgateway-clients";
const ACCOUNT = "podgateway-provisioner";
const CONTROLLER = "podgateway-provisioner-controller";
const AUDIENCE = "podgateway-provisioner";
const SENDER = `system:serviceaccount:${SERVICE_NS}:default`;
const POD_RULE = { apiGroups: [""], resources: ["pods"], verbs: ["create", "get", "patch", "delete", "list", "watch"] };

describe("deploy/rbac.yaml: least privilege, for real", () => {
  let kubectl: (...args: string[]) => string;
  let createdNamespaces: string[] = [];
  let token: string;
  let senderToken: string;
  let asService: RestClient;
  let kubeconfig: string;
  let controllerKubeconfig: string;
  const removals: (() => void)[] = [];
  let sink: EventReceiver;
  let service: RunningService;
  let controller: RunningService;

  const send = async (url: string, id: string, bearer = senderToken) => {
    // A fixed time: every send of one id is a redelivery of the same event, as a broker makes it.
    const message = HTTP.binary(new CloudEvent({ id, source: "/e2e/rbac", type: "io.podgateway.client.pending", time: "2026-01-01T00:00:00Z", data: { gateway_name: "foo" } }));
    const response = await fetch(url, { method: "POST", headers: { ...message.headers as Record<string, string>, authorization: `Bearer ${bearer}` }, body: message.body as string });
    const body = await response.text();
    const event = replyEvent(Object.fromEntries(response.headers), body);
    return { status: response.status, type: event?.type ?? null, time: event?.time ?? null, body };
  };
  /** The start-up of a mode with these options: its exit code and what it printed. */
  const startUp = (args: string[], env: Record<string, string>) => {
    const command = testedServiceCommand(repo);
    return spawnSync(command.command, [...command.args, ...args], { env: { ...process.env, HOST: "127.0.0.1", PORT: "0", ...env }, encoding: "utf8", timeout: 30_000 });
  };

  before(async () => {
    const env = clusterEnv();
    kubectl = (...args) => execFileSync(env.KUBECTL!, args, { encoding: "utf8", env: { ...process.env, KUBECONFIG: clusterKubeconfig() } });
    // A previous run's namespaces may still be terminating: new content would be refused there.
    await waitFor("deploy namespaces to finish terminating", async () =>
      !/Terminating/.test(kubectl("get", "namespaces", SERVICE_NS, CLIENT_NS, "--ignore-not-found", "-o", "jsonpath={.items[*].status.phase}")), NAMESPACES_GONE_MS);
    const existing = kubectl("get", "namespaces", "-o", "name");
    createdNamespaces = [SERVICE_NS, CLIENT_NS].filter((ns) => !existing.includes(`namespace/${ns}\n`));
    kubectl("apply", "--server-side", "--force-conflicts", "-f", `${repo}/deploy/namespace.yaml`, "-f", `${repo}/deploy/rbac.yaml`);

    const admin = await adminClient();
    for (const ns of [SERVICE_NS, CLIENT_NS]) {
      await admin.performRequest({ method: "POST", path: `/api/v1/namespaces/${ns}/serviceaccounts`, body: { metadata: { name: "default" } } })
        .catch((error) => {
          if (!(error instanceof KubeApiError && error.code === 409)) throw error;
        });
    }
    const provisionerIdentity = await serviceAccountKubeconfig(SERVICE_NS, ACCOUNT);
    const controllerIdentity = await serviceAccountKubeconfig(SERVICE_NS, CONTROLLER);
    removals.push(provisionerIdentity.remove, controllerIdentity.remove);
    ({ kubeconfig, token } = provisionerIdentity);
    controllerKubeconfig = controllerIdentity.kubeconfig;
    senderToken = await serviceAccountToken(SERVICE_NS, "default", AUDIENCE);
    const ca = readFileSync(env.KUBE_CA_FILE!, "utf8");
    asService = new HttpRestClient({ server: admin.server, fetcher: (await fetcherFactory())({ ca }), token: () => token });
    sink = await startReceiver();
    // As shipped: sender authentication on; the controller with lifecycle events.
    // As deployed: the template of deploy/, checked at start (a dry-run create) with this identity too.
    service = await startService({
      KUBECONFIG: kubeconfig, CLIENT_NAMESPACE: CLIENT_NS, OIDC_AUDIENCE: AUDIENCE, ALLOWED_SENDERS: SENDER,
      CLIENT_POD_TEMPLATE: `${repo}/deploy/client-pod-template.yaml`, GATEWAYS: "foo,bar",
    });
    controller = await startController({ KUBECONFIG: controllerKubeconfig, CLIENT_NAMESPACE: CLIENT_NS, CLIENT_LIFECYCLE_EVENTS: "true", K_SINK: sink.url });
  });

  after(async () => {
    await service?.stop();
    await controller?.stop();
    await sink?.close();
    // The controller is stopped: the uninstall step frees the client pods of its finalizer.
    removeFinalizers(CLIENT_NS);
    for (const remove of removals) remove();
    if (createdNamespaces.length > 0) kubectl("delete", "namespace", "--timeout=90s", ...createdNamespaces); // waited for: deploy.test.ts reuses the names
    else kubectl("delete", "-f", `${repo}/deploy/rbac.yaml`, "--ignore-not-found");
  });

  test("as shipped, with the ServiceAccounts' tokens: a routed client pod, its ready event, the finalizer; no 403 anywhere", async () => {
    const answer = await send(service.url, `rbac-${Date.now()}`);
    assert.equal(answer.status, 200, answer.body);
    assert.equal(answer.type, "io.podgateway.client.scheduling.done", answer.body);
    const name = JSON.parse(answer.body).pod_name;
    const pod = await getPodOrNull(CLIENT_NS, name);
    assert.ok(pod?.spec?.initContainers?.some((container) => container.name === "gateway-init"));
    assert.deepEqual(pod?.spec?.schedulingGates ?? [], []);
    assert.ok(pod?.spec?.containers.some((container) => container.name === "client" && container.resources?.limits?.memory), "made from the template");
    assert.ok(service.logs.some((line) => /client pod template accepted/.test(String(line.msg))));
    assert.equal((await fetch(`${service.url}/readyz`)).status, 200, "readiness works with this identity too");
    assert.equal((await send(service.url, "rbac-stranger", token)).status, 401, "a token for another audience is refused");
    const clients = await fetch(`${service.url}/clients`, { headers: { authorization: `Bearer ${senderToken}` } });
    assert.equal(clients.status, 200, await clients.text());
    assert.equal((await fetch(`${service.url}/clients`)).status, 401, "/clients obeys sender authentication too");

    await waitFor("the ready event", async () => sink.events.some((event) => event.subject === name && event.type.endsWith(".ready")), 30_000);
    assert.ok((await getPodOrNull(CLIENT_NS, name))?.metadata?.finalizers?.includes("podgateway.io/lifecycle"));
    for (const running of [service, controller]) assert.doesNotMatch(running.output(), /forbidden/i);
  });

  test("a missing rule stops start-up with exit 2 naming verb, resource and namespace", () => {
    const capacity = startUp([], { KUBECONFIG: kubeconfig, CLIENT_NAMESPACE: CLIENT_NS, MAX_CLIENTS_PER_GATEWAY: "1" });
    assert.equal(capacity.status, 2, capacity.stderr + capacity.stdout);
    assert.match(capacity.stderr, /missing RBAC permissions?: .*create coordination\.k8s\.io\/leases in namespace podgateway-clients \(for --max-clients-per-gateway\)/);

    kubectl("patch", "role", CONTROLLER, "-n", CLIENT_NS, "--type=json", "-p", JSON.stringify([{ op: "remove", path: "/rules/0/verbs/2" }])); // watch
    try {
      const run = startUp(["controller"], { KUBECONFIG: controllerKubeconfig, CLIENT_NAMESPACE: CLIENT_NS });
      assert.equal(run.status, 2, run.stderr + run.stdout);
      assert.match(run.stderr, /watch pods in namespace podgateway-clients/);
    } finally {
      kubectl("apply", "--server-side", "--force-conflicts", "-f", `${repo}/deploy/rbac.yaml`);
    }
  });

  test("a permanent refusal after the pod was created (403 on leases) answers failed, never 500, and leaves no pod", async () => {
    // Granted at start (the check passes), revoked under the running service.
    const leases = { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["get", "list", "create", "update", "delete"] };
    kubectl("patch", "role", ACCOUNT, "-n", CLIENT_NS, "--type=json", "-p", JSON.stringify([{ op: "replace", path: "/rules", value: [POD_RULE, leases] }]));
    const limited = await startService({ KUBECONFIG: kubeconfig, CLIENT_NAMESPACE: CLIENT_NS, MAX_CLIENTS_PER_GATEWAY: "1", OIDC_AUDIENCE: AUDIENCE, ALLOWED_SENDERS: SENDER });
    try {
      kubectl("apply", "--server-side", "--force-conflicts", "-f", `${repo}/deploy/rbac.yaml`);
      const id = `rbac-lease-${Date.now()}`;
      const first = await send(limited.url, id);
      const second = await send(limited.url, id);
      assert.equal(first.status, 200, first.body);
      assert.equal(first.type, "io.podgateway.client.scheduling.failed", first.body);
      const data = JSON.parse(first.body);
      assert.equal(data.reason, "AdmissionFailed", first.body);
      assert.match(data.message, /leases/);
      assert.deepEqual(second, first, "a redelivery gets the byte-identical answer");
      const name = limited.logs.find((line) => line.outcome === "failed")?.pod as string;
      assert.ok(name, "the failed event names its pod in the log");
      assert.equal(await getPodOrNull(CLIENT_NS, name), null, "no gated pod is left behind");
    } finally {
      kubectl("apply", "--server-side", "--force-conflicts", "-f", `${repo}/deploy/rbac.yaml`);
      await limited.stop();
    }
  });

  test("the same identities are forbidden outside their Roles", async () => {
    const forbidden = async (what: string, method: "GET" | "POST" | "DELETE", path: string, body?: unknown) => {
      await assert.rejects(asService.performRequest({ method, path, body }), (error: unknown) => {
        assert.ok(error instanceof KubeApiError, `${what}: ${error}`);
        assert.equal(error.code, 403, `${what}: ${error.message}`);
        return true;
      }, what);
    };
    const pod = { apiVersion: "v1", kind: "Pod", metadata: { name: "intruder" }, spec: { containers: [{ name: "c", image: "x" }] } };
    await forbidden("pods in another namespace", "POST", "/api/v1/namespaces/default/pods", pod);
    await forbidden("pods in its own namespace", "POST", `/api/v1/namespaces/${SERVICE_NS}/pods`, pod);
    await forbidden("watching pods in another namespace", "GET", "/api/v1/namespaces/default/pods?watch=1");
    await forbidden("leases (not used as shipped)", "GET", `/apis/coordination.k8s.io/v1/namespaces/${CLIENT_NS}/leases`);
    await forbidden("secrets in the client namespace", "GET", `/api/v1/namespaces/${CLIENT_NS}/secrets`);
    await forbidden("configmaps in the client namespace", "GET", `/api/v1/namespaces/${CLIENT_NS}/configmaps`);
    await forbidden("pods/exec", "POST", `/api/v1/namespaces/${CLIENT_NS}/pods/x/exec?command=sh`);
    await forbidden("nodes (cluster-scoped)", "GET", "/api/v1/nodes");
    await forbidden("namespaces (cluster-scoped)", "POST", "/api/v1/namespaces", { metadata: { name: "pgw-intruder" } });
    await forbidden("deleting its own namespace", "DELETE", `/api/v1/namespaces/${CLIENT_NS}`);
    await forbidden("cluster roles", "GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles");
    await forbidden("editing its own Role", "DELETE", `/apis/rbac.authorization.k8s.io/v1/namespaces/${CLIENT_NS}/roles/${ACCOUNT}`);
  });
});
