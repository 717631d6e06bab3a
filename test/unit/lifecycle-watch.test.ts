/** The pod watch: list, then watch; resume from the last resourceVersion; list again on 410 Gone. */
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import type { Pod } from "kubernetes-types/core/v1";
import { KubeTransportError } from "../../src/kube/errors.ts";
import { jsonLines } from "../../src/kube/http-client.ts";
import { watchPods } from "../../src/lifecycle/watch.ts";
import { FakeKube } from "./lifecycle-fake-kube.ts";

const selector = "app.kubernetes.io/managed-by=podgateway-provisioner";

async function until(what: string, check: () => boolean, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const open: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of open.splice(0)) await stop();
});

function start(kube: FakeKube) {
  const lists: string[][] = [];
  const changes: string[] = [];
  const stop = new AbortController();
  const done = watchPods({ kube, namespace: "ns", labelSelector: selector, log: () => {}, minBackoffMs: 1, maxBackoffMs: 5 }, {
    onList: (pods: Pod[]) => {
      lists.push(pods.map((pod) => pod.metadata!.name!));
    },
    onChange: (type, pod) => {
      changes.push(`${type} ${pod.metadata!.name}`);
    },
  }, stop.signal);
  const halt = async () => (stop.abort(), await done);
  open.push(halt);
  return { lists, changes, stop: halt };
}

test("lists, then streams changes of matching pods only", async () => {
  const kube = new FakeKube();
  kube.addPod("a");
  const watch = start(kube);
  await until("the list", () => watch.lists.length === 1);
  assert.deepEqual(watch.lists[0], ["a"]);
  kube.addPod("b");
  kube.addPod("other", { labels: { "app.kubernetes.io/managed-by": "someone-else" } });
  kube.setStatus("a", { phase: "Running" });
  await until("two changes", () => watch.changes.length === 2);
  assert.deepEqual(watch.changes, ["ADDED b", "MODIFIED a"]);
  await watch.stop();
});

test("a closed or broken stream resumes from the last resourceVersion seen, bookmarks included; nothing is lost or repeated", async () => {
  const kube = new FakeKube();
  const watch = start(kube);
  await until("the list", () => watch.lists.length === 1);
  kube.addPod("a");
  await until("a", () => watch.changes.length === 1);
  kube.bookmark();
  await new Promise((resolve) => setTimeout(resolve, 20));
  kube.closeWatches();
  kube.addPod("b"); // while no watch is open
  await until("b", () => watch.changes.length === 2);
  kube.failures.push(new KubeTransportError("connection refused"));
  kube.closeWatches();
  kube.setStatus("a", { phase: "Running" });
  await until("a modified", () => watch.changes.length === 3);
  assert.deepEqual(watch.changes, ["ADDED a", "ADDED b", "MODIFIED a"]);
  assert.equal(watch.lists.length, 1, "no relist needed");
  const watches = kube.calls.filter((call) => call.startsWith("WATCH"));
  assert.ok(watches.length >= 3);
  assert.ok(!watches.slice(1).some((call) => call.endsWith("rv=1")), `resumed from later versions: ${watches}`);
  await watch.stop();
});

test("410 Gone makes it list again, and the fresh list is reported", async () => {
  const kube = new FakeKube();
  const watch = start(kube);
  await until("the list", () => watch.lists.length === 1);
  kube.closeWatches();
  kube.addPod("a");
  kube.compactedAt = kube.resourceVersion;
  await until("a second list", () => watch.lists.length === 2);
  assert.deepEqual(watch.lists[1], ["a"]);
  await watch.stop();
});

test("stopping ends the loop promptly", async () => {
  const kube = new FakeKube();
  const watch = start(kube);
  await until("the list", () => watch.lists.length === 1);
  const started = Date.now();
  await watch.stop();
  assert.ok(Date.now() - started < 1_000);
});

test("jsonLines splits chunks on newlines, wherever the chunks break", async () => {
  const chunks = ['{"a":', '1}\n{"b"', ':2}\n\n{"c":3}'];
  const stream = new ReadableStream<string>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
      controller.close();
    },
  }).pipeThrough(jsonLines<Record<string, number>>());
  const out: Record<string, number>[] = [];
  const reader = stream.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    out.push(value);
  }
  assert.deepEqual(out, [{ a: 1 }, { b: 2 }, { c: 3 }]);
});
