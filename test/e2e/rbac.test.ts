/**
 * deploy/rbac.yaml is enough and no more: with a real token of its ServiceAccount the service provisions a
 * routed client pod end to end, and the same identity is forbidden everything else — pods in another namespace,
 * secrets, anything cluster-scoped.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { CloudEvent, HTTP } from "cloudevents";
import { KubeApiError } from "../../src/kube/errors.ts";
import { HttpRestClient } from "../../src/kube/http-client.ts";
import type { RestClient } from "../../src/kube/rest-client.ts";
import { adminClient, cluster, clusterKubeconfig, getPodOrNull, repo, waitFor } from "../support/cluster.ts";
import { fetcherFactory } from "../support/runtime.ts";
import { type RunningService, startService } from "../support/service.ts";

const SERVICE_NS = "podgateway";
const CLIENT_NS = "podgateway-clients";
const ACCOUNT = "podgateway-provisioner";

describe("deploy/rbac.yaml: least privilege, for real", () => {
  const dir = mkdtempSync(join(tmpdir(), "pgw-rbac-"));
  let kubectl: (...args: string[]) => string;
  let createdNamespaces: string[] = [];
  let token: string;
  let asService: RestClient;
  let service: RunningService;
  let kubeconfig: string;

  before(async () => {
    const env = Object.fromEntries(cluster("env").split("\n").map((line) => /^export (\w+)=(.*)$/.exec(line)).filter((m) => m !== null).map((m) => [m![1], m![2]]));
    kubectl = (...args) => execFileSync(env.KUBECTL!, args, { encoding: "utf8", env: { ...process.env, KUBECONFIG: clusterKubeconfig() } });
    // A previous run's namespaces may still be terminating: new content would be refused there.
    await waitFor("deploy namespaces to finish terminating", async () =>
      !/Terminating/.test(kubectl("get", "namespaces", SERVICE_NS, CLIENT_NS, "--ignore-not-found", "-o", "jsonpath={.items[*].status.phase}")), 120_000);
    const existing = kubectl("get", "namespaces", "-o", "name");
    createdNamespaces = [SERVICE_NS, CLIENT_NS].filter((ns) => !existing.includes(`namespace/${ns}\n`));
    kubectl("apply", "-f", `${repo}/deploy/namespace.yaml`, "-f", `${repo}/deploy/rbac.yaml`);

    const admin = await adminClient();
    for (const ns of [SERVICE_NS, CLIENT_NS]) {
      await admin.performRequest({ method: "POST", path: `/api/v1/namespaces/${ns}/serviceaccounts`, body: { metadata: { name: "default" } } })
        .catch((error) => {
          if (!(error instanceof KubeApiError && error.code === 409)) throw error;
        });
    }
    const request = await admin.performRequest<{ status: { token: string } }>({
      method: "POST",
      path: `/api/v1/namespaces/${SERVICE_NS}/serviceaccounts/${ACCOUNT}/token`,
      body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { expirationSeconds: 600 } },
    });
    token = request.status.token;

    // A kubeconfig that is nothing but the ServiceAccount's token and the cluster's CA.
    const ca = readFileSync(join(repo, ".cache/cluster/pki/ca.crt"), "utf8");
    kubeconfig = join(dir, "kubeconfig");
    writeFileSync(kubeconfig, JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      "current-context": "sa",
      clusters: [{ name: "local", cluster: { server: admin.server, "certificate-authority-data": Buffer.from(ca).toString("base64") } }],
      users: [{ name: ACCOUNT, user: { token } }],
      contexts: [{ name: "sa", context: { cluster: "local", user: ACCOUNT } }],
    }));
    asService = new HttpRestClient({ server: admin.server, fetcher: (await fetcherFactory())({ ca }), token: () => token });
    service = await startService({ KUBECONFIG: kubeconfig, CLIENT_NAMESPACE: CLIENT_NS });
  });

  after(async () => {
    await service?.stop();
    rmSync(dir, { recursive: true, force: true });
    if (createdNamespaces.length > 0) kubectl("delete", "namespace", "--timeout=90s", ...createdNamespaces); // waited for: deploy.test.ts reuses the names
    else kubectl("delete", "-f", `${repo}/deploy/rbac.yaml`, "--ignore-not-found");
  });

  test("with the ServiceAccount's token the service provisions a routed client pod", async () => {
    const message = HTTP.binary(new CloudEvent({ id: `rbac-${Date.now()}`, source: "/e2e/rbac", type: "io.podgateway.client.pending", data: { gateway_name: "foo" } }));
    const response = await fetch(service.url, { method: "POST", headers: message.headers as Record<string, string>, body: message.body as string });
    const body = await response.text();
    assert.equal(response.status, 200, body);
    assert.equal(response.headers.get("ce-type"), "io.podgateway.client.scheduling.done", body);
    const pod = await getPodOrNull(CLIENT_NS, JSON.parse(body).pod_name);
    assert.ok(pod?.spec?.initContainers?.some((container) => container.name === "gateway-init"));
    assert.deepEqual(pod?.spec?.schedulingGates ?? [], []);
    assert.equal((await fetch(`${service.url}/readyz`)).status, 200, "readiness works with this identity too");
  });

  test("a permanent refusal after the pod was created (403 on leases) answers failed, never 500, and leaves no pod", async () => {
    // RBAC changed under a running service: capacity needs Leases, and they are no longer granted.
    const limited = await startService({ KUBECONFIG: kubeconfig, CLIENT_NAMESPACE: CLIENT_NS, MAX_CLIENTS_PER_GATEWAY: "1" });
    try {
      kubectl("patch", "role", ACCOUNT, "-n", CLIENT_NS, "--type=json", "-p",
        JSON.stringify([{ op: "replace", path: "/rules", value: [{ apiGroups: [""], resources: ["pods"], verbs: ["create", "get", "patch", "delete", "list", "watch"] }] }]));
      const message = HTTP.binary(new CloudEvent({ id: `rbac-lease-${Date.now()}`, source: "/e2e/rbac", type: "io.podgateway.client.pending", data: { gateway_name: "foo" } }));
      const answers = [];
      for (let delivery = 0; delivery < 2; delivery++) {
        const response = await fetch(limited.url, { method: "POST", headers: message.headers as Record<string, string>, body: message.body as string });
        answers.push({ status: response.status, type: response.headers.get("ce-type"), time: response.headers.get("ce-time"), body: await response.text() });
      }
      const [first, second] = answers;
      assert.equal(first!.status, 200, first!.body);
      assert.equal(first!.type, "io.podgateway.client.scheduling.failed", first!.body);
      const data = JSON.parse(first!.body);
      assert.equal(data.reason, "AdmissionFailed", first!.body);
      assert.match(data.message, /leases/);
      assert.deepEqual(second, first, "a redelivery gets the byte-identical answer");
      const name = (limited.logs.find((line) => line.outcome === "failed")?.pod) as string;
      assert.ok(name, "the failed event names its pod in the log");
      assert.equal(await getPodOrNull(CLIENT_NS, name), null, "no gated pod is left behind");
    } finally {
      kubectl("apply", "-f", `${repo}/deploy/rbac.yaml`);
      await limited.stop();
    }
  });

  test("the same identity is forbidden outside its Role", async () => {
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
