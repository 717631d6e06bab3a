import assert from "node:assert/strict";
import { test } from "node:test";
import { KubeTransportError } from "../../src/kube/errors.ts";
import { AGAIN, retryOnConflict } from "../../src/retry.ts";

test("retryOnConflict: a lost race runs the attempt again, at most `times` rounds, then asks for a retry later", async () => {
  const rounds: number[] = [];
  assert.equal(await retryOnConflict(3, (round) => Promise.resolve(rounds.push(round) && round < 2 ? AGAIN : "won"), "never"), "won");
  assert.deepEqual(rounds, [0, 1, 2]);

  let calls = 0;
  await assert.rejects(retryOnConflict(4, () => Promise.resolve((calls++, AGAIN)), "lost every race; retry later"), (error: unknown) =>
    error instanceof KubeTransportError && error.message === "lost every race; retry later");
  assert.equal(calls, 4);

  const refused = new Error("forbidden");
  await assert.rejects(retryOnConflict(3, () => Promise.reject(refused), "never"), refused, "what an attempt throws ends the loop");
});
