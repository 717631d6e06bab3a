/**
 * End-to-end checks of the local cluster (`npm run cluster -- up` must have run):
 * pod-gateway webhooks foo/bar, kwok nodes, scheduling gates, RBAC with a real service-account token.
 *
 * Runs under Node (`node --test test/harness/local-cluster.test.ts`) and Deno (`deno test -A test/harness/local-cluster.test.ts`).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { clusterKubeconfig } from "../support/cluster.ts";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

// ---------------------------------------------------------------- tiny HTTPS client

type Tls = { ca: string; cert?: string; key?: string };
type Reply = { status: number; body: any };
type Call = (method: string, path: string, body?: unknown, headers?: Record<string, string>) => Promise<Reply>;

function kubeconfigTls(): { server: string; tls: Tls } {
  const path = clusterKubeconfig();
  const text = readFileSync(path, "utf8");
  const field = (name: string): string | undefined => text.match(new RegExp(`^\\s*${name}:\\s*(\\S+)\\s*$`, "m"))?.[1];
  const data = (name: string): string | undefined => {
    const inline = field(`${name}-data`);
    if (inline) return Buffer.from(inline, "base64").toString("utf8");
    const file = field(name);
    return file ? readFileSync(resolve(dirname(path), file), "utf8") : undefined;
  };
  const server = field("server");
  const ca = data("certificate-authority");
  if (!server || !ca) throw new Error(`${path}: no server or certificate authority`);
  return { server, tls: { ca, cert: data("client-certificate"), key: data("client-key") } };
}

async function httpsClient(server: string, tls: Tls, bearer?: string): Promise<Call> {
  const deno = (globalThis as any).Deno;
  let doFetch: (url: string, init: any) => Promise<Response>;
  if (deno) {
    const client = deno.createHttpClient({ caCerts: [tls.ca], ...(tls.cert ? { cert: tls.cert, key: tls.key } : {}) });
    doFetch = (url, init) => fetch(url, { ...init, client } as RequestInit);
  } else {
    const undici: any = await import("undici");
    const dispatcher = new undici.Agent({ connect: { ca: tls.ca, cert: tls.cert, key: tls.key } });
    doFetch = (url, init) => undici.fetch(url, { ...init, dispatcher });
  }
  return async (method, path, body, headers = {}) => {
    const h: Record<string, string> = { accept: "application/json", ...headers };
    if (bearer) h.authorization = `Bearer ${bearer}`;
    if (body !== undefined) h["content-type"] ??= "application/json";
    const res = await doFetch(server + path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    let parsed: any = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON
    }
    return { status: res.status, body: parsed };
  };
}

async function waitFor<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

// ---------------------------------------------------------------- fixtures

let api: Call;
let server: string;
let caPem: string;
const ns = `pgw-cluster-test-${Math.random().toString(36).slice(2, 8)}`;

async function ok(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<any> {
  const r = await api(method, path, body, headers);
  assert.ok(r.status >= 200 && r.status < 300, `${method} ${path} -> ${r.status}: ${JSON.stringify(r.body)}`);
  return r.body;
}

function pod(name: string, meta: { labels?: Record<string, string>; annotations?: Record<string, string> }, spec: Record<string, unknown> = {}) {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, ...meta },
    spec: { containers: [{ name: "app", image: "registry.example/app:1" }], terminationGracePeriodSeconds: 0, ...spec },
  };
}

const createPod = (p: unknown) => ok("POST", `/api/v1/namespaces/${ns}/pods`, p);
const getPod = (name: string) => ok("GET", `/api/v1/namespaces/${ns}/pods/${name}`);

function env(c: any): Record<string, string> {
  return Object.fromEntries((c.env ?? []).map((e: any) => [e.name, e.value ?? ""]));
}

function assertRoutedBy(p: any, gw: "foo" | "bar") {
  const other = gw === "foo" ? "bar" : "foo";
  const inits = (p.spec.initContainers ?? []).filter((c: any) => c.name === "gateway-init");
  const sidecars = p.spec.containers.filter((c: any) => c.name === "gateway-sidecar");
  assert.equal(inits.length, 1, "exactly one gateway-init init container");
  assert.equal(sidecars.length, 1, "exactly one gateway-sidecar container");
  for (const c of [inits[0], sidecars[0]]) {
    const e = env(c);
    // the gateway Service of chart >= 7.0.3 (release <gw>, namespace gateways): "<fullname>-main"
    assert.equal(e.gateway, `${gw}-pod-gateway-main.gateways.svc.cluster.local`);
    assert.ok(!JSON.stringify(c).includes(`${other}-pod-gateway`), `${c.name} carries nothing of ${other}`);
    assert.deepEqual(c.securityContext.capabilities.add, ["NET_ADMIN", "NET_RAW"]);
  }
  assert.deepEqual(inits[0].command, ["/bin/client_init.sh"]);
  assert.deepEqual(sidecars[0].command, ["/bin/client_sidecar.sh"]);
  const vol = (p.spec.volumes ?? []).find((v: any) => v.name === "gateway-configmap");
  assert.equal(vol?.configMap?.name, `${gw}-pod-gateway`);
  assert.equal(p.spec.dnsPolicy, "None");
  assert.equal(p.spec.dnsConfig.nameservers.length, 1);
  assert.ok(p.spec.dnsConfig.searches.includes(`${ns}.svc.cluster.local`));
}

function assertNotRouted(p: any) {
  assert.ok(!(p.spec.initContainers ?? []).some((c: any) => c.name === "gateway-init"));
  assert.ok(!p.spec.containers.some((c: any) => c.name === "gateway-sidecar"));
  assert.ok(!(p.spec.volumes ?? []).some((v: any) => v.name === "gateway-configmap"));
  assert.notEqual(p.spec.dnsPolicy, "None");
}

const running = (name: string) =>
  waitFor(`pod ${name} Running and Ready`, async () => {
    const p = await getPod(name);
    const ready = (p.status?.conditions ?? []).some((c: any) => c.type === "Ready" && c.status === "True");
    return p.status?.phase === "Running" && ready ? p : undefined;
  });

describe("local cluster", () => {
  before(async () => {
    const cfg = kubeconfigTls();
    server = cfg.server;
    caPem = cfg.tls.ca;
    api = await httpsClient(cfg.server, cfg.tls);
    await ok("POST", "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: ns, labels: { "routed-gateway": "true" } } });
    await waitFor(`default ServiceAccount in ${ns}`, async () => (await api("GET", `/api/v1/namespaces/${ns}/serviceaccounts/default`)).status === 200);
  });

  after(async () => {
    if (api) await api("DELETE", `/api/v1/namespaces/${ns}`, { kind: "DeleteOptions", apiVersion: "v1", gracePeriodSeconds: 0 });
  });

  test("`cluster status` reports every component running; `cluster env` is sourceable", () => {
    const status = execFileSync("bash", [resolve(repo, "cluster/cluster.sh"), "status"], { encoding: "utf8" });
    for (const c of ["etcd", "apiserver", "scheduler", "controller-manager", "kwok", "webhook-foo", "webhook-bar"]) {
      assert.match(status, new RegExp(`^${c}\\s+running \\(pid \\d+\\)$`, "m"));
    }
    const env = execFileSync("bash", [resolve(repo, "cluster/cluster.sh"), "env"], { encoding: "utf8" });
    assert.match(env, /^export KUBECONFIG=\/\S+$/m);
    assert.match(env, /^export KUBE_API_URL=https:\/\/127\.0\.0\.1:\d+$/m);
    assert.match(env, /^export KUBECTL=\/\S+\/kubectl$/m);
  });

  test("API server reports v1.36.3", async () => {
    const v = await ok("GET", "/version");
    assert.equal(v.gitVersion, "v1.36.3");
  });

  test("pod labelled setGateway=foo gets foo's gateway-init and sidecar, nothing of bar", async () => {
    const p = await createPod(pod("routed-foo", { labels: { setGateway: "foo" } }));
    assertRoutedBy(p, "foo");
    assert.equal(p.spec.dnsConfig.nameservers[0], "172.16.0.1");
    assertRoutedBy(await getPod("routed-foo"), "foo");
  });

  test("pod labelled setGateway=bar gets bar's", async () => {
    const p = await createPod(pod("routed-bar", { labels: { setGateway: "bar" } }));
    assertRoutedBy(p, "bar");
    assert.equal(p.spec.dnsConfig.nameservers[0], "172.16.1.1");
  });

  test("pod annotated setGateway=bar gets bar's", async () => {
    assertRoutedBy(await createPod(pod("annotated-bar", { annotations: { setGateway: "bar" } })), "bar");
  });

  test("unknown gateway (setGateway=baz) and unlabelled pods are not mutated", async () => {
    assertNotRouted(await createPod(pod("routed-baz", { labels: { setGateway: "baz" } })));
    assertNotRouted(await createPod(pod("plain", {})));
  });

  test("namespace without routed-gateway=true is not mutated", async () => {
    const other = `${ns}-plain`;
    await ok("POST", "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: other } });
    try {
      await waitFor(`default ServiceAccount in ${other}`, async () => (await api("GET", `/api/v1/namespaces/${other}/serviceaccounts/default`)).status === 200);
      assertNotRouted(await ok("POST", `/api/v1/namespaces/${other}/pods`, pod("foo-unrouted", { labels: { setGateway: "foo" } })));
    } finally {
      await api("DELETE", `/api/v1/namespaces/${other}`);
    }
  });

  test("three kwok nodes are Ready", async () => {
    const nodes = await ok("GET", "/api/v1/nodes");
    for (const name of ["kwok-node-0", "kwok-node-1", "kwok-node-2"]) {
      const n = nodes.items.find((x: any) => x.metadata.name === name);
      assert.ok(n, `node ${name} exists`);
      assert.equal(n.metadata.annotations["kwok.x-k8s.io/node"], "fake");
      assert.ok(n.status.conditions.some((c: any) => c.type === "Ready" && c.status === "True"), `${name} Ready`);
    }
  });

  test("routed pod with init containers and several containers is scheduled to a kwok node and becomes Running and Ready", async () => {
    await createPod(
      pod("runs", { labels: { setGateway: "foo" } }, {
        initContainers: [{ name: "prepare", image: "registry.example/init:1" }],
        containers: [
          { name: "app", image: "registry.example/app:1" },
          { name: "helper", image: "registry.example/helper:1" },
        ],
      }),
    );
    const p = await running("runs");
    assert.match(p.spec.nodeName, /^kwok-node-[0-2]$/);
    assert.deepEqual(p.spec.containers.map((c: any) => c.name), ["app", "helper", "gateway-sidecar"]);
    assert.deepEqual(p.spec.initContainers.map((c: any) => c.name), ["prepare", "gateway-init"]);
    assert.ok(p.status.containerStatuses.every((s: any) => s.ready === true));
    assert.ok(p.status.podIP, "pod IP assigned");
  });

  test("pod with schedulingGates stays Pending until the gates are removed", async () => {
    await createPod(pod("gated", {}, { schedulingGates: [{ name: "example.com/hold" }] }));
    await new Promise((r) => setTimeout(r, 3000));
    const p = await getPod("gated");
    assert.equal(p.status.phase, "Pending");
    assert.equal(p.spec.nodeName, undefined);
    assert.ok(p.status.conditions.some((c: any) => c.type === "PodScheduled" && c.reason === "SchedulingGated"));
    await ok("PATCH", `/api/v1/namespaces/${ns}/pods/gated`, { spec: { schedulingGates: null } }, { "content-type": "application/merge-patch+json" });
    const r = await running("gated");
    assert.match(r.spec.nodeName, /^kwok-node-[0-2]$/);
  });

  test("a service account bound to a namespaced Role is forbidden outside its namespace", async () => {
    await ok("POST", `/api/v1/namespaces/${ns}/serviceaccounts`, { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "limited" } });
    await ok("POST", `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`, {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: { name: "pod-reader" },
      rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get", "list"] }],
    });
    await ok("POST", `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`, {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name: "limited-pod-reader" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "pod-reader" },
      subjects: [{ kind: "ServiceAccount", name: "limited", namespace: ns }],
    });
    const tr = await ok("POST", `/api/v1/namespaces/${ns}/serviceaccounts/limited/token`, {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenRequest",
      spec: { expirationSeconds: 600 },
    });
    assert.equal(typeof tr.status.token, "string");
    const sa = await httpsClient(server, { ca: caPem }, tr.status.token);
    const who = await sa("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", { apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" });
    assert.equal(who.body.status?.userInfo?.username, `system:serviceaccount:${ns}:limited`);
    // RBAC caches are eventually consistent with the binding: allow a moment
    await waitFor("Role to take effect", async () => (await sa("GET", `/api/v1/namespaces/${ns}/pods`)).status === 200, 10_000);
    assert.equal((await sa("GET", "/api/v1/namespaces/kube-system/pods")).status, 403);
    assert.equal((await sa("GET", "/api/v1/namespaces/default/pods")).status, 403);
    assert.equal((await sa("GET", "/api/v1/pods")).status, 403);
    assert.equal((await sa("GET", "/api/v1/namespaces")).status, 403);
    assert.equal((await sa("DELETE", `/api/v1/namespaces/${ns}/pods/runs`)).status, 403);
  });
});
