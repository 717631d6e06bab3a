/**
 * The README's checkable claims, checked: its configuration table is `--help` (every flag, its environment
 * variable and default, no more, no less), and every `reason` the schemas allow is documented.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import * as v from "valibot";
import { loadConfig } from "../../src/config.ts";
import { FailureReason, ReleaseFailedData } from "../../src/events/schema.ts";

const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");

/** `--help`'s options: flag → { env, default } (no default: ""). */
function helpOptions(): Map<string, { env: string; default: string }> {
  const result = loadConfig(["--help"], {});
  assert.ok("help" in result);
  const options = new Map<string, { env: string; default: string }>();
  const lines = result.help.split("\n");
  lines.forEach((line, index) => {
    const flag = /^ {2}(--[a-z-]+) /.exec(line)?.[1];
    const env = /^\s+env ([A-Z_]+)(?:, default "(.*)")?$/.exec(lines[index + 1] ?? "");
    if (flag && env) options.set(flag, { env: env[1]!, default: env[2] ?? "" });
  });
  return options;
}

/** The README's configuration table: flag → { env, default cell }. */
function readmeOptions(): Map<string, { env: string; default: string }> {
  const section = readme.slice(readme.indexOf("### Configuration"), readme.indexOf("\n### ", readme.indexOf("### Configuration") + 1));
  const options = new Map<string, { env: string; default: string }>();
  for (const row of section.split("\n").filter((line) => line.startsWith("| `--"))) {
    const [flag, env, fallback] = row.split("|").slice(1).map((cell) => cell.trim());
    options.set(flag!.replace(/`/g, ""), { env: env!.replace(/`/g, ""), default: fallback! });
  }
  return options;
}

test("the README's configuration table lists exactly --help's flags, each with its environment variable and default", () => {
  const help = helpOptions();
  const documented = readmeOptions();
  assert.ok(help.size > 20, `parsed ${help.size} options from --help`);
  assert.deepEqual([...documented.keys()].sort(), [...help.keys()].sort());
  for (const [flag, option] of help) {
    const row = documented.get(flag)!;
    assert.equal(row.env, option.env, `${flag}: environment variable`);
    if (option.default) assert.ok(row.default.includes(`\`${option.default}\``), `${flag}: default ${option.default} in "${row.default}"`);
  }
});

test("every reason the schemas allow in a failed answer is documented in the README", () => {
  const reasons = [...FailureReason.options, ...(ReleaseFailedData.entries.reason as v.PicklistSchema<string[], undefined>).options];
  const missing = reasons.filter((reason) => !readme.includes(`\`${reason}\``));
  assert.deepEqual(missing, []);
});
