import assert from "node:assert/strict";
import { test } from "node:test";
import { type Config, loadConfig } from "../../src/config.ts";

const config = (args: string[], env: Record<string, string> = {}): Config => {
  const result = loadConfig(args, env);
  if ("help" in result) throw new Error("unexpected help");
  return result.config;
};

test("defaults match the seed", () => {
  const c = config([]);
  assert.equal(c["client-namespace"], "default");
  // Unset: the template's, whose default is alpine/curl + sleep infinity (DEFAULT_TEMPLATE).
  assert.equal(c["client-image"], "");
  assert.equal(c["client-command"], undefined);
  assert.equal(c["client-pod-template"], "");
  assert.deepEqual(c.gateways, []);
  assert.equal(c["gateway-label"], "setGateway");
  assert.equal(c["gateway-annotation"], "setGateway");
  assert.equal(c.port, 8080);
});

test("flags win over the environment, which wins over defaults", () => {
  const c = config(["--client-image", "busybox"], { CLIENT_IMAGE: "nginx", CLIENT_NAMESPACE: "clients", PORT: "9090" });
  assert.equal(c["client-image"], "busybox");
  assert.equal(c["client-namespace"], "clients");
  assert.equal(c.port, 9090);
});

test("--name=value works like --name value; SHUTDOWN_GRACE_MS is an option too", () => {
  const c = config(["--client-namespace=clients", "--port", "0"], { SHUTDOWN_GRACE_MS: "500" });
  assert.equal(c["client-namespace"], "clients");
  assert.equal(c.port, 0);
  assert.equal(c["shutdown-grace-ms"], 500);
  assert.equal(config([])["shutdown-grace-ms"], 25_000);
  assert.throws(() => config(["--port"]), /Option '--port' needs a value/);
  assert.throws(() => config(["clients"]), /Unexpected argument 'clients'/);
});

test("a command may be a JSON array", () => {
  assert.deepEqual(config(["--client-command", '["sh","-c","sleep 1; echo hi"]'])["client-command"], ["sh", "-c", "sleep 1; echo hi"]);
});

test("bad options fail with the flag, its variable and the rule", () => {
  assert.throws(() => config(["--port", "http"]), /--port \(PORT\) must be a whole number/);
  assert.throws(() => config([], { CLIENT_NAMESPACE: "Not_A_Namespace" }), /--client-namespace \(CLIENT_NAMESPACE\) must be a namespace name/);
  assert.throws(() => config(["--client-command", "[1]"]), /--client-command/);
  assert.throws(() => config(["--gateway-label", "", "--gateway-annotation", ""]), /cannot both be empty/);
  assert.throws(() => config(["--nope"]), /Unknown option '--nope'/);
});

test("--gateways is a comma-separated list of label values", () => {
  assert.deepEqual(config(["--gateways", "foo, bar,"]).gateways, ["foo", "bar"]);
  assert.deepEqual(config([], { GATEWAYS: "foo" }).gateways, ["foo"]);
  assert.throws(() => config(["--gateways", "foo,-bad-"]), /--gateways \(GATEWAYS\) must be a Kubernetes label value/);
});

test("--help returns the usage text", () => {
  const result = loadConfig(["--help"], {});
  assert.ok("help" in result && result.help.includes("--client-namespace"));
  for (const flag of ["--client-pod-template", "--gateways"]) assert.ok("help" in result && result.help.includes(flag), flag);
});
