import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { loadConfig } from "../../src/config.ts";
import { connectKube } from "../../src/kube/connect.ts";
import { isTransient } from "../../src/kube/errors.ts";
import { createController } from "../../src/controller/controller.ts";
import { createService } from "../../src/service.ts";

const dir = mkdtempSync(join(tmpdir(), "service-"));
const kubeconfig = join(dir, "kubeconfig");
writeFileSync(kubeconfig, JSON.stringify({
  "current-context": "c",
  clusters: [{ name: "k", cluster: { server: "https://127.0.0.1:1" } }],
  users: [{ name: "u", user: { token: "t" } }],
  contexts: [{ name: "c", context: { cluster: "k", user: "u" } }],
}));
const config = (env: Record<string, string>) => {
  const loaded = loadConfig([], { KUBECONFIG: kubeconfig, ...env });
  if ("help" in loaded) throw new Error("help");
  return loaded.config;
};
const noFetch = () => () => Promise.reject(new Error("no network in this test"));
const connection = await connectKube({ kubeconfig, timeoutMs: 1000 }, noFetch, {});

test("start-up refuses settings that cannot work, before anything listens", async () => {
  await assert.rejects(createService(config({ CLIENT_LIFECYCLE_EVENTS: "true" }), connection, { K_SINK: "http://x" }, () => {}), /controller's/);
  await assert.rejects(createController(config({ CLIENT_LIFECYCLE_EVENTS: "true" }), connection, {}, () => {}), /needs K_SINK/);
  await assert.rejects(createController(config({}), connection, { K_CE_OVERRIDES: "{" }, () => {}), /K_CE_OVERRIDES is not valid JSON/);
  await assert.rejects(createService(config({}), connection, { K_CE_OVERRIDES: "{" }, () => {}), /K_CE_OVERRIDES is not valid JSON/);
});

test("a working configuration gives an app, and warns when sender authentication is off", async () => {
  const lines: Record<string, unknown>[] = [];
  const service = await createService(config({}), connection, {}, (record) => lines.push(record));
  assert.equal((await service.app.fetch(new Request("http://x/healthz"))).status, 200);
  assert.match(service.describe, /kubeconfig .* \(https:\/\/127\.0\.0\.1:1\)/);
  assert.ok(lines.some((line) => /sender authentication is off/.test(String(line.msg))));
  const quiet: Record<string, unknown>[] = [];
  await createService(config({ OIDC_AUDIENCE: "aud", ALLOWED_SENDERS: "*" }), connection, {}, (record) => quiet.push(record));
  assert.ok(!quiet.some((line) => /sender authentication is off/.test(String(line.msg))));
});

test("a client pod template is checked before Kubernetes is asked; an unreachable API server makes the check transient", async () => {
  const owned = "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {containers: [{name: c, image: i}]}\n";
  await assert.rejects(createService(config({ CLIENT_POD_TEMPLATE: "t.yaml" }), connection, {}, () => {}, owned), /t\.yaml: metadata\.name is set by the provisioner/);
  const good = "apiVersion: v1\nkind: Pod\nspec: {containers: [{name: c, image: i}]}\n";
  await assert.rejects(createService(config({ CLIENT_POD_TEMPLATE: "t.yaml" }), connection, {}, () => {}, good), (error: Error) => {
    assert.match(error.message, /t\.yaml: could not be checked with the API server \(dry run\), retry/);
    assert.ok(isTransient(error.cause), "exit 1, not 2: the template may be fine");
    return true;
  });
});
