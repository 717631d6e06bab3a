import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { kubeconfigClient, kubeconfigPath, loadKubeconfig } from "../../src/kube/kubeconfig.ts";

const dir = mkdtempSync(join(tmpdir(), "kubeconfig-"));
const b64 = (text: string) => Buffer.from(text).toString("base64");

test("resolves the current context with inline data and relative files", async () => {
  writeFileSync(join(dir, "ca.pem"), "CA");
  const path = join(dir, "config");
  writeFileSync(path, `
apiVersion: v1
kind: Config
current-context: b
clusters:
- name: one
  cluster: { server: "https://a:1", certificate-authority-data: ${b64("X")} }
- name: two
  cluster: { server: "https://b:2", certificate-authority: ca.pem }
users:
- name: u
  user: { client-certificate-data: ${b64("CERT")}, client-key-data: ${b64("KEY")} }
- name: t
  user: { token: secret-token }
contexts:
- name: a
  context: { cluster: one, user: u }
- name: b
  context: { cluster: two, user: t, namespace: ns }
`);
  const b = await loadKubeconfig(path);
  assert.deepEqual([b.server, b.tls.ca, b.token, b.namespace], ["https://b:2", "CA", "secret-token", "ns"]);
  const a = await loadKubeconfig(path, "a");
  assert.deepEqual([a.server, a.tls.ca, a.tls.cert, a.tls.key, a.token], ["https://a:1", "X", "CERT", "KEY", undefined]);
});

test("explains what is wrong", async () => {
  const write = (name: string, text: string) => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };
  await assert.rejects(loadKubeconfig(join(dir, "missing")), /cannot read kubeconfig/);
  await assert.rejects(loadKubeconfig(write("nocontext", "clusters: []\n")), /no current-context/);
  await assert.rejects(loadKubeconfig(write("badcluster", "current-context: x\ncontexts: [{name: x, context: {cluster: nope}}]\n")), /cluster "nope"/);
  await assert.rejects(loadKubeconfig(write("invalid", "clusters: [{name: c, cluster: {server: 1}}]\n")), /invalid at clusters\.0\.cluster\.server/);
  await assert.rejects(
    loadKubeconfig(write("exec", "current-context: x\ncontexts: [{name: x, context: {cluster: c, user: e}}]\nclusters: [{name: c, cluster: {server: 'https://c'}}]\nusers: [{name: e, user: {exec: {command: aws}}}]\n")),
    /exec or auth-provider plugin/,
  );
});

test("the path follows kubectl: explicit, then the first KUBECONFIG entry, then ~/.kube/config", () => {
  assert.equal(kubeconfigPath("/x", { KUBECONFIG: "/y" }), "/x");
  assert.equal(kubeconfigPath(undefined, { KUBECONFIG: "/y:/z" }), "/y");
  assert.match(kubeconfigPath(undefined, {}), /\.kube\/config$/);
});

test("a tokenFile is read again as it rotates, like the in-cluster service account's token", async () => {
  const tokenPath = join(dir, "rotating-token");
  writeFileSync(tokenPath, "first\n");
  const path = join(dir, "with-token-file");
  writeFileSync(path, `
current-context: c
clusters: [{ name: c, cluster: { server: "https://c:1" } }]
users: [{ name: u, user: { tokenFile: rotating-token } }]
contexts: [{ name: c, context: { cluster: c, user: u } }]
`);
  const sent: (string | null)[] = [];
  const fetcher = async (_url: string, init: RequestInit) => {
    sent.push(new Headers(init.headers).get("authorization"));
    return new Response("{}", { status: 200, headers: { "content-type": "application/json" } });
  };
  const client = await kubeconfigClient(path, () => fetcher, { tokenRefreshMs: 0 });
  await client.performRequest({ method: "GET", path: "/version" });
  writeFileSync(tokenPath, "second\n");
  await client.performRequest({ method: "GET", path: "/version" });
  assert.deepEqual(sent, ["Bearer first", "Bearer second"]);
});
