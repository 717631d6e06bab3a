/**
 * The executable's cap on requests to the API server at once (src/adapter/bun.ts): never more than the cap in
 * flight, the others served in order, and a failed request frees its slot.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { limited } from "../../src/adapter/bun.ts";

test("at most `max` requests in flight; the rest wait in order; a failure frees its slot", async () => {
  let inFlight = 0;
  let most = 0;
  const started: string[] = [];
  const pending: { url: string; settle: () => void }[] = [];
  const fetcher = limited((url) => {
    inFlight++;
    most = Math.max(most, inFlight);
    started.push(url);
    return new Promise<Response>((resolve, reject) => {
      pending.push({ url, settle: () => {
        inFlight--;
        if (url.endsWith("/fail")) reject(new Error("connection refused"));
        else resolve(new Response("ok"));
      } });
    });
  }, 2);
  const calls = ["a/fail", "b", "c", "d", "e"].map((path) => fetcher(`https://api/${path}`, {}).then((r) => r.status, (e: Error) => e.message));
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(started, ["https://api/a/fail", "https://api/b"]);
  while (pending.length) {
    pending.shift()!.settle();
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.deepEqual(await Promise.all(calls), ["connection refused", 200, 200, 200, 200]);
  assert.equal(most, 2);
  assert.deepEqual(started, ["a/fail", "b", "c", "d", "e"].map((path) => `https://api/${path}`));
});
