/**
 * Per-gateway capacity slots against the in-memory API server, whose calls interleave like HTTP calls:
 * never more holders than slots, however many claim at once; idempotent; freed by release or by the holder's end.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Pod } from "kubernetes-types/core/v1";
import { type CapacityOptions, claimSlot, releaseSlots, slotName } from "../../src/lifecycle/capacity.ts";
import { FakeKube } from "./lifecycle-fake-kube.ts";

const setup = (max: number) => {
  const kube = new FakeKube();
  const options: CapacityOptions = { kube, namespace: "ns", maxPerGateway: max };
  return { kube, options };
};

test("50 pods claiming 5 slots of one gateway at once: exactly 5 get one, each a different slot", async () => {
  const { kube, options } = setup(5);
  const pods = Array.from({ length: 50 }, (_, index) => kube.addPod(`p${index}`));
  const claims = await Promise.all(pods.map((pod) => claimSlot(options, "foo", pod)));
  const granted = claims.filter((claim) => claim.ok);
  assert.equal(granted.length, 5);
  assert.deepEqual(granted.map((claim) => claim.ok && claim.slot).sort(), [0, 1, 2, 3, 4]);
  assert.equal(kube.leases.size, 5);
  const refused = claims.find((claim) => !claim.ok);
  assert.match(refused && !refused.ok ? refused.message : "", /gateway foo has its maximum of 5 clients/);
  // Another gateway has its own slots.
  assert.equal((await claimSlot(options, "bar", kube.addPod("b0"))).ok, true);
});

test("claims are idempotent: the same pod, also claiming twice at once, holds one slot", async () => {
  const { kube, options } = setup(3);
  const pod = kube.addPod("p");
  const [first, second] = await Promise.all([claimSlot(options, "foo", pod), claimSlot(options, "foo", pod)]);
  assert.ok(first.ok && second.ok);
  const third = await claimSlot(options, "foo", pod);
  const held = [...kube.leases.values()].filter((lease) => lease.metadata?.labels?.["podgateway.io/holder-uid"] === pod.metadata?.uid);
  assert.equal(held.length, 1);
  assert.deepEqual(third, { ok: true, slot: Number(held[0]!.metadata!.name!.split("-").pop()) }, "the slot it holds, again");
});

test("a slot whose holder is gone, failed or being deleted is taken over; a live holder keeps it", async () => {
  const { kube, options } = setup(1);
  const live = kube.addPod("live");
  assert.ok((await claimSlot(options, "foo", live)).ok);
  assert.equal((await claimSlot(options, "foo", kube.addPod("x1"))).ok, false);

  kube.setStatus("live", { phase: "Failed", reason: "DeadlineExceeded" });
  const second = kube.addPod("second");
  assert.ok((await claimSlot(options, "foo", second)).ok, "a failed holder frees its slot");
  assert.equal(kube.leases.get(slotName("foo", 0))?.spec?.holderIdentity, "second");

  kube.pods.delete("second");
  assert.ok((await claimSlot(options, "foo", kube.addPod("third"))).ok, "a gone holder frees its slot");

  await kube.performRequest({ method: "PATCH", path: "/api/v1/namespaces/ns/pods/third", contentType: "application/strategic-merge-patch+json", body: { metadata: { finalizers: ["f"] } } });
  await kube.performRequest({ method: "DELETE", path: "/api/v1/namespaces/ns/pods/third" });
  assert.ok((await claimSlot(options, "foo", kube.addPod("fourth"))).ok, "a holder being deleted frees its slot");
});

test("a released pod's slot is free again at once; racing take-overs of one stale slot: one wins", async () => {
  const { kube, options } = setup(2);
  const a = kube.addPod("a");
  const b = kube.addPod("b");
  assert.ok((await claimSlot(options, "foo", a)).ok);
  assert.ok((await claimSlot(options, "foo", b)).ok);
  await releaseSlots(options, a.metadata!.uid!);
  assert.equal(kube.leases.size, 1);

  kube.pods.delete("b"); // b's slot is stale now, a's is free
  const contenders: Pod[] = Array.from({ length: 10 }, (_, index) => kube.addPod(`c${index}`));
  const claims = await Promise.all(contenders.map((pod) => claimSlot(options, "foo", pod)));
  assert.equal(claims.filter((claim) => claim.ok).length, 2);
  const holders = [...kube.leases.values()].map((lease) => lease.spec?.holderIdentity).sort();
  assert.equal(new Set(holders).size, 2);
  assert.ok(holders.every((holder) => holder?.startsWith("c")));
});

test("a claim costs O(1) API calls at a limit of 1,000: one LIST and one create, or two LISTs and one take-over", async () => {
  const { kube, options } = setup(1_000);
  // Slots 0..998 held (written directly: claiming them one by one would make the test O(n²)).
  for (let n = 0; n < 999; n++) {
    const pod = kube.addPod(`h${n}`);
    await kube.performRequest({
      method: "POST",
      path: "/apis/coordination.k8s.io/v1/namespaces/ns/leases",
      body: {
        metadata: {
          name: slotName("foo", n),
          labels: { "app.kubernetes.io/managed-by": "podgateway-provisioner", "podgateway.io/gateway": "foo", "podgateway.io/holder-uid": pod.metadata!.uid! },
        },
        spec: { holderIdentity: pod.metadata!.name },
      },
    });
  }
  assert.equal(kube.leases.size, 999);

  const callsOf = async (pod: Pod) => {
    kube.calls.length = 0;
    const claim = await claimSlot(options, "foo", pod);
    return { claim, calls: [...kube.calls] };
  };
  const last = await callsOf(kube.addPod("last"));
  assert.deepEqual(last.claim, { ok: true, slot: 999 });
  // LIST slots, POST the free one, LIST again to settle (a twin delivery may have claimed one too).
  assert.deepEqual(last.calls.map((call) => call.split(" ")[0]), ["GET", "POST", "GET"], last.calls.join("\n"));

  const full = await callsOf(kube.addPod("full"));
  assert.equal(full.claim.ok, false);
  // Lists are paged (500 a page), as the API server pages them: count lists, not their pages.
  const lists = (calls: string[]) => calls.filter((call) => !call.endsWith("(next page)"));
  assert.equal(lists(full.calls).length, 2, `list slots + list pods, however many slots: ${full.calls.join("\n")}`);

  kube.pods.delete("h500");
  const takeover = await callsOf(kube.addPod("after"));
  assert.ok(takeover.claim.ok);
  assert.equal(takeover.claim.ok && takeover.claim.slot, 500);
  assert.ok(lists(takeover.calls).length <= 4, takeover.calls.join("\n"));
});
