import assert from "node:assert/strict";
import { test } from "node:test";
import * as v from "valibot";
import { describeIssues, PendingData } from "../../src/events/schema.ts";

const problem = (data: unknown) => {
  const result = v.safeParse(PendingData, data);
  return result.success ? undefined : describeIssues(result.issues);
};

test("accepts Kubernetes label values as gateway names", () => {
  for (const name of ["foo", "a", "Foo_bar.baz-1", "x".repeat(63), "0a9"]) {
    assert.equal(problem({ gateway_name: name }), undefined, name);
  }
  assert.equal(problem({ gateway_name: "foo", message: "hi" }), undefined);
});

test("rejects bad gateway names, naming the field and the rule", () => {
  const cases: [unknown, RegExp][] = [
    [{}, /^data\.gateway_name /],
    [{ gateway_name: "" }, /data\.gateway_name must not be empty/],
    [{ gateway_name: "x".repeat(64) }, /data\.gateway_name must be at most 63 characters/],
    [{ gateway_name: "-foo" }, /data\.gateway_name must be a Kubernetes label value/],
    [{ gateway_name: "foo-" }, /label value/],
    [{ gateway_name: "fo o" }, /label value/],
    [{ gateway_name: "föö" }, /label value/],
    [{ gateway_name: "foo\n" }, /label value/],
    [{ gateway_name: 42 }, /data\.gateway_name must be a string/],
    ["foo", /must be a JSON object/],
    [{ gateway_name: "foo", message: 1 }, /data\.message must be a string/],
  ];
  for (const [data, expected] of cases) {
    assert.match(problem(data) ?? "(accepted)", expected, JSON.stringify(data));
  }
});
