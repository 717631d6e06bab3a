/** The lifecycle options: flags and environment, defaults, and the rules they must follow. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { loadConfig } from "../../src/config.ts";
import { clientPod } from "../../src/provision/client-pod.ts";

const load = (args: string[], env: Record<string, string> = {}) => {
  const result = loadConfig(args, env);
  if ("help" in result) throw new Error("unexpected help");
  return result.config;
};

test("defaults: lifecycle events off, no lifetime limit, no capacity limit, 300 s ready timeout", () => {
  const config = load([]);
  assert.equal(config["client-lifecycle-events"], false);
  assert.equal(config["client-max-lifetime-seconds"], 0);
  assert.equal(config["max-clients-per-gateway"], 0);
  assert.equal(config["client-ready-timeout-seconds"], 300);
  assert.equal(config["gateway-sidecar-container"], "gateway-sidecar");
});

test("flags and environment set them; bad values name the flag", () => {
  const config = load(["--client-max-lifetime-seconds", "3600", "--max-clients-per-gateway=5"], { CLIENT_LIFECYCLE_EVENTS: "true", CLIENT_READY_TIMEOUT_SECONDS: "60" });
  assert.equal(config["client-lifecycle-events"], true);
  assert.equal(config["client-max-lifetime-seconds"], 3600);
  assert.equal(config["max-clients-per-gateway"], 5);
  assert.equal(config["client-ready-timeout-seconds"], 60);
  assert.throws(() => load(["--max-clients-per-gateway=-1"]), /--max-clients-per-gateway \(MAX_CLIENTS_PER_GATEWAY\) must be a whole number/);
  assert.throws(() => load([], { CLIENT_LIFECYCLE_EVENTS: "yes" }), /--client-lifecycle-events \(CLIENT_LIFECYCLE_EVENTS\) must be true or false/);
});

test("the maximum lifetime becomes the pod's activeDeadlineSeconds; none means none", () => {
  const settings = { namespace: "n", image: "i", command: ["c"], gatewayLabelKey: "setGateway", gatewayAnnotationKey: "setGateway" };
  const request = { source: "/s", id: "1", gatewayName: "foo" };
  assert.equal(clientPod({ ...settings, activeDeadlineSeconds: 3600 }, request).spec?.activeDeadlineSeconds, 3600);
  assert.equal("activeDeadlineSeconds" in clientPod(settings, request).spec!, false);
});
