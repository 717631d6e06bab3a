/**
 * The clients page in a real browser (Debian's headless Chromium) against the service on the local cluster:
 * a new client appears without a reload, pending and unplaced until a kwok node may take it, then ready on that
 * node; a release from the page removes it live; reloads at any moment show what the API server has; and the
 * JSON `GET /clients` pages through the real API server's `limit`/`continue`.
 * The clients' template selects a node label no node has at first (so a client stays pending as long as the
 * test wants); the test then puts the label on one kwok node, and kwok makes the scheduled pod Ready.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Browser, Page } from "puppeteer-core";
import { openBrowser, screenshot } from "../support/browser.ts";
import { adminClient, getPodOrNull, listPods, routedNamespace, waitFor } from "../support/cluster.ts";
import { deliver, pendingMessage } from "../support/knative-sender.ts";
import { type RunningService, startService } from "../support/service.ts";

const NODE = "kwok-node-0";
const NODE_LABEL = "e2e.podgateway.io/clients-page";

/** Puts the test's label on the node (`value`), or takes it off (`null`). */
async function labelNode(value: string | null): Promise<void> {
  await (await adminClient()).performRequest({
    method: "PATCH",
    path: `/api/v1/nodes/${NODE}`,
    contentType: "application/merge-patch+json",
    body: { metadata: { labels: { [NODE_LABEL]: value } } },
  });
}

describe("the clients page, in a real browser, on the local cluster", () => {
  let namespace: Awaited<ReturnType<typeof routedNamespace>>;
  let service: RunningService;
  let browser: Browser;
  let page: Page;
  let dir: string;

  /** Provisions one client of gateway foo; its pod's name. */
  const provision = async (id: string): Promise<string> => {
    const delivery = await deliver(service.url, pendingMessage(id, "foo", "/e2e/clients-page"));
    assert.equal(delivery.answer?.event?.type, "io.podgateway.client.scheduling.done", delivery.answer?.body);
    return delivery.answer!.event!.data!.pod_name!;
  };
  /** The rows the page shows now: pod → [state, node]. */
  const rows = () =>
    page.$$eval("tr[data-pod]", (trs) => Object.fromEntries(trs.map((tr) => [tr.getAttribute("data-pod"), [tr.getAttribute("data-state"), tr.children[4]?.textContent]])));
  const waitForRow = (pod: string, state: string | null, timeout = 30_000) =>
    page.waitForFunction(
      (name, wanted) => {
        const row = document.querySelector(`tr[data-pod="${name}"]`);
        return wanted === null ? !row : row?.getAttribute("data-state") === wanted;
      },
      { timeout },
      pod,
      state,
    );
  /** A mark in the page's JS state: it survives as long as the page was not reloaded. */
  const mark = () => page.evaluate(() => ((window as unknown as { mark: number }).mark = 1));
  const marked = () => page.evaluate(() => (window as unknown as { mark?: number }).mark === 1);

  before(async () => {
    namespace = await routedNamespace("e2e-clients-page");
    dir = mkdtempSync(join(tmpdir(), "pgw-clients-page-"));
    const template = join(dir, "client-pod-template.yaml");
    writeFileSync(template, JSON.stringify({
      apiVersion: "v1",
      kind: "Pod",
      spec: {
        nodeSelector: { [NODE_LABEL]: namespace.name },
        containers: [{ name: "client", image: "alpine/curl", command: ["sleep", "infinity"] }],
      },
    }));
    service = await startService({ CLIENT_NAMESPACE: namespace.name, CLIENT_POD_TEMPLATE: template, GATEWAYS: "foo,bar" });
    browser = await openBrowser();
    page = await browser.newPage();
    await page.setViewport({ width: 980, height: 420 });
  });
  after(async () => {
    await browser?.close();
    await labelNode(null).catch(() => {});
    await service?.stop();
    await namespace?.remove();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("a new client appears live, pending with no node, and turns ready on the node that takes it", async () => {
    await page.goto(`${service.url}/ui/clients?gateway=foo`);
    await page.waitForFunction(() => document.getElementById("status")?.textContent?.startsWith("Live: 0 clients"));
    await mark();

    const pod = await provision(`cp-live-${Date.now()}`);
    await waitForRow(pod, "pending");
    assert.deepEqual((await rows())[pod], ["pending", ""], "not placed: no node carries the template's label yet");

    await labelNode(namespace.name);
    await waitForRow(pod, "ready");
    assert.deepEqual((await rows())[pod], ["ready", NODE]);
    assert.match(await page.$eval("#status", (element) => element.textContent ?? ""), new RegExp(`${pod} is ready`), "announced in the live region");
    assert.ok(await marked(), "no reload happened");
    await screenshot(page, "clients-page");
  });

  test("reloaded at any moment, the page shows exactly the clients the API server has", async () => {
    for (let round = 0; round < 4; round++) {
      const sent = provision(`cp-reload-${round}-${Date.now()}`);
      // Reload while the event is in flight, at a different moment each round.
      await new Promise((resolve) => setTimeout(resolve, round * 40));
      await page.reload();
      const pod = await sent;
      await waitForRow(pod, "ready");
    }
    await page.reload();
    await page.waitForFunction(() => document.getElementById("status")?.textContent?.startsWith("Live:"));
    const names = (await listPods(namespace.name)).map((pod) => pod.metadata!.name!).sort();
    assert.equal(names.length, 5);
    assert.deepEqual(Object.keys(await rows()).sort(), names);
  });

  test("release from the page deletes the pod and removes its row live", async () => {
    await mark();
    // Everything the live region says from now on (the stream's news may overtake the release's answer).
    await page.evaluate(() => {
      const said: string[] = ((window as unknown as { said: string[] }).said = []);
      const status = document.getElementById("status")!;
      new MutationObserver(() => said.push(status.textContent ?? "")).observe(status, { childList: true, characterData: true, subtree: true });
    });
    const [pod] = Object.keys(await rows());
    await page.click(`button[data-pod="${pod}"]`);
    await waitForRow(pod!, null);
    await page.waitForFunction((name) => (window as unknown as { said: string[] }).said.includes(`${name} released.`), { timeout: 15_000 }, pod);
    const said = await page.evaluate(() => (window as unknown as { said: string[] }).said);
    assert.ok(said.includes(`${pod} is gone.`), said.join(" | "));
    assert.ok(await marked(), "no reload happened");
    await waitFor("the released pod to be gone", async () => (await getPodOrNull(namespace.name, pod!)) === null);
    assert.equal(service.logs.filter((line) => line.type === "io.podgateway.client.release" && line.outcome === "done").length, 1);
  });

  test("GET /clients pages through the API server's limit and continue", async () => {
    const names = (await listPods(namespace.name)).map((pod) => pod.metadata!.name!).sort();
    assert.equal(names.length, 4);
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const answer = await fetch(`${service.url}/clients?gateway=foo&limit=3${token ? `&continue=${encodeURIComponent(token)}` : ""}`);
      assert.equal(answer.status, 200);
      const page = await answer.json();
      assert.ok(page.clients.length <= 3);
      seen.push(...page.clients.map((client: { pod_name: string }) => client.pod_name));
      token = page.continue;
      pages++;
    } while (token);
    assert.equal(pages, 2);
    assert.deepEqual(seen.sort(), names, "every client once");
    assert.equal((await fetch(`${service.url}/clients?continue=not-a-token`)).status, 400);
  });
});
