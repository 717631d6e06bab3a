/**
 * The idempotency keys rest on SHA-256: pod names, slot Lease names and result ids are derived from requests,
 * so every replica and every version must derive the same ones. Known vectors (FIPS 180-4's "abc" and the
 * empty string, padding edges at 55/56/64 bytes) and names computed by the former hand-written hash.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { resolve } from "node:path";
import { test } from "node:test";
import { slotName } from "../../src/lifecycle/capacity.ts";
import { clientPodName } from "../../src/provision/client-pod.ts";
import { digest, sha256Hex, useSha256 } from "../../src/util/digest.ts";

function knownVectors() {
  assert.equal(sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  assert.equal(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  assert.equal(sha256Hex("a".repeat(55)), "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
  assert.equal(sha256Hex("a".repeat(56)), "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
  assert.equal(sha256Hex("a".repeat(64)), "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
  assert.equal(digest("a", "bc"), "40bb547d936bbd31318ee37ac8799e7ecbb22eda2651f65e3214bffb8ce97bb4");
  assert.notEqual(digest("a", "bc"), digest("ab", "c"));
}

function earlierNames() {
  assert.equal(clientPodName({ source: "/quickstart", id: "hello-1" }), "pgw-client-feebe5cd7785f7c43252");
  assert.equal(clientPodName({ source: "https://example.com/sender", id: "ünïcødé-✓" }), "pgw-client-23e0971e3e5599d97477");
  assert.equal(clientPodName({ source: "s", id: "x".repeat(200) }), "pgw-client-6982b69d21233f6f4b91");
  assert.equal(slotName("foo", 0), "pgw-slot-2c26b46b68ffc68f-0");
  assert.equal(slotName("Bar_1", 3), "pgw-slot-b220f2a27ec4578e-3");
}

test("SHA-256 known vectors (@noble/hashes, the core's default)", knownVectors);
test("pod and slot names are those every earlier version derived (a redelivery meets the same pod)", earlierNames);

// The entrypoints hand over their runtime's native hash (src/main/*): it must derive the very same names.
test("the native SHA-256 an entrypoint hands over (node:crypto, as in Node and Deno) derives the same names", () => {
  useSha256((text) => createHash("sha256").update(text).digest("hex"));
  knownVectors();
  earlierNames();
});

test("Bun's native SHA-256 (the executable's, src/main/bun.ts) hashes as node:crypto does", () => {
  const inputs = ["", "abc", "a".repeat(64), "/quickstart\0hello-1", "https://example.com/sender\0ünïcødé-✓"];
  const bun = resolve(import.meta.dirname, "../../node_modules/.bin/bun");
  const script = `console.log(JSON.stringify(${JSON.stringify(inputs)}.map((text) => Bun.SHA256.hash(text, "hex"))))`;
  const hashed = JSON.parse(execFileSync(bun, ["-e", script], { encoding: "utf8" })) as string[];
  assert.deepEqual(hashed, inputs.map((text) => createHash("sha256").update(text).digest("hex")));
});
