import assert from "node:assert/strict";
import { test } from "node:test";
import * as v from "valibot";
import { describeIssues, OutputData, PendingData } from "../../src/events/schema.ts";
import { EventTypes } from "../../src/events/types.ts";
import { checkData } from "../support/received.ts";

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

test("every event type the service sends has a data schema, and the tests' check rejects broken data", () => {
  const sent = Object.entries(EventTypes).filter(([name]) => name !== "pending" && name !== "release").map(([, type]) => type);
  assert.deepEqual(sent.filter((type) => !OutputData[type]), []);
  const done = { pod_name: "p", namespace: "n", gateway_name: "foo", message: "m", served_from: "pool" };
  assert.doesNotThrow(() => checkData(EventTypes.done, done));
  const { pod_name: _, ...noPod } = done;
  assert.throws(() => checkData(EventTypes.done, noPod), /scheduling\.done breaks its schema: data\.pod_name /);
  assert.throws(() => checkData(EventTypes.done, { ...done, extra: "x" }), /data\.extra/);
  assert.throws(() => checkData(EventTypes.failed, { reason: "Oops", message: "m" }), /data\.reason/);
  assert.throws(() => checkData(EventTypes.clientReady, { pod_name: "p", namespace: "n" }), /data\.message/);
  assert.throws(() => checkData(EventTypes.releaseFailed, { reason: "NotAClient" }), /data\.message/);
  assert.doesNotThrow(() => checkData(EventTypes.releaseDone, { pod_name: "p", namespace: "n", message: "deleted" }));
});
