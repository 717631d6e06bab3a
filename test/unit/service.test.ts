import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { loadConfig } from "../../src/config.ts";
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

test("start-up refuses settings that cannot work, before anything listens", async () => {
  await assert.rejects(createService(config({ CLIENT_LIFECYCLE_EVENTS: "true" }), noFetch, { K_SINK: "http://x" }, () => {}), /controller's/);
  await assert.rejects(createController(config({ CLIENT_LIFECYCLE_EVENTS: "true" }), noFetch, {}, () => {}), /needs K_SINK/);
  await assert.rejects(createService(config({}), noFetch, { K_CE_OVERRIDES: "{" }, () => {}), /K_CE_OVERRIDES is not valid JSON/);
});

test("a working configuration gives an app, and warns when sender authentication is off", async () => {
  const lines: Record<string, unknown>[] = [];
  const service = await createService(config({}), noFetch, {}, (record) => lines.push(record));
  assert.equal((await service.app.fetch(new Request("http://x/healthz"))).status, 200);
  assert.match(service.describe, /kubeconfig .* \(https:\/\/127\.0\.0\.1:1\)/);
  assert.ok(lines.some((line) => /sender authentication is off/.test(String(line.msg))));
  const quiet: Record<string, unknown>[] = [];
  await createService(config({ OIDC_AUDIENCE: "aud", ALLOWED_SENDERS: "*" }), noFetch, {}, (record) => quiet.push(record));
  assert.ok(!quiet.some((line) => /sender authentication is off/.test(String(line.msg))));
});
