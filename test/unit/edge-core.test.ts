import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { problems } from "../../scripts/check-edge-core.ts";

test("the edge-style check finds Node modules, Node globals and imports of the runtime edges", () => {
  const found = problems("src/x/y.ts", [
    'import { readFile } from "node:fs/promises";',
    'import { Agent } from "undici";',
    'import { connectKube } from "../kube/connect.ts";',
    'import type { KubeConnection } from "../kube/connect.ts";',
    'const text = Buffer.from("aGk=", "base64").toString();',
    "const home = process.env.HOME;",
    "const ok = { process: 1 }.process + globalThis.crypto.randomUUID().length;",
  ].join("\n"));
  assert.deepEqual(found, [
    "src/x/y.ts:1: imports node:fs/promises",
    "src/x/y.ts:2: imports undici",
    "src/x/y.ts:3: imports the runtime edge src/kube/connect.ts",
    "src/x/y.ts:5: uses the Node global Buffer",
    "src/x/y.ts:6: uses the Node global process",
  ]);
});

test("the core under src/ passes it", () => {
  execFileSync(process.execPath, [...(process.versions.deno ? ["run", "-A"] : []), fileURLToPath(new URL("../../scripts/check-edge-core.ts", import.meta.url))], { stdio: "pipe" });
});
