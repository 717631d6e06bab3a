/**
 * The seed's quickstart, as a person does it: the real CloudEvents Player (deploy/cloudevents-player.yaml, built by
 * cluster/player.sh) on the local cluster's Knative Serving, opened in headless Chromium through Kourier (the
 * Knative Service's URL, resolved to Kourier's Service), the form filled and sent. Its send goes to the Broker with
 * its OIDC token, the provisioner (on Serving too) answers, and the answer comes back to the player through its
 * Trigger: the page's Activity list shows both, the done one naming the client pod.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Browser, Page } from "puppeteer-core";
import { clientPodName } from "../../src/provision/client-pod.ts";
import { openBrowser, screenshot } from "../support/browser.ts";
import { kubectlRun, waitFor } from "../support/cluster.ts";
import { applyDeploy, CLIENT_NS, kubectl, PLAYER, PROVISIONER, removeDeploy, SERVICE_NS, waitReady } from "../support/knative.ts";
import { waitServiceReady } from "../support/serving.ts";

const SOURCE = "/e2e/player";

/** One row of the Activity table, as the page shows it. */
interface Row {
  id: string;
  type: string;
  subject: string;
  source: string;
  /** SENT, RECEIVED or FAILED: the status icon's tooltip. */
  status: string;
}

/** The Activity table's rows, read from the page's DOM. */
function rows(page: Page): Promise<Row[]> {
  return page.$$eval("table[aria-label='activity table'] tbody tr", (trs) =>
    trs.map((tr) => {
      const cells = [...tr.querySelectorAll("th, td")];
      const text = (i: number) => cells[i]?.textContent?.trim() ?? "";
      const status = cells[4]?.querySelector("[title]")?.getAttribute("title") ?? "";
      return { id: text(0), type: text(1), subject: text(2), source: text(3), status };
    }));
}

/** Fills the "Create event" form field `id` the way a person types (the page's React state follows key events). */
async function fill(page: Page, id: string, value: string): Promise<void> {
  await page.click(`#${id}`);
  await page.keyboard.down("Control");
  await page.keyboard.press("KeyA");
  await page.keyboard.up("Control");
  await page.keyboard.press("Backspace");
  await page.type(`#${id}`, value);
}

/** Sends one event from the form; returns the pod name the provisioner derives from it. */
async function send(page: Page, id: string, type: string, data: unknown): Promise<string> {
  await fill(page, "id", id);
  await fill(page, "type", type);
  await fill(page, "source", SOURCE);
  await fill(page, "message", JSON.stringify(data));
  await page.locator("button ::-p-text(Send event)").click();
  return clientPodName({ source: SOURCE, id });
}

/** Until the Activity list has a row matching `want`; returns it. */
async function row(page: Page, what: string, want: (r: Row) => boolean, timeoutMs = 120_000): Promise<Row> {
  let found: Row | undefined;
  await waitFor(`the Activity list to show ${what}`, async () => (found = (await rows(page)).find(want)) !== undefined, timeoutMs);
  return found!;
}

describe("the CloudEvents Player in a real browser: send pending, see the result", { timeout: 900_000 }, () => {
  let browser: Browser | undefined;
  let page: Page;
  const run = Date.now().toString(36);

  before(async () => {
    await applyDeploy({ serving: true, player: true });
    await waitReady("sinkbindings.sources.knative.dev", PROVISIONER, 120_000);
    await waitServiceReady(PROVISIONER);
    await waitServiceReady(PLAYER);
    await waitReady("triggers.eventing.knative.dev", PROVISIONER);
    await waitReady("triggers.eventing.knative.dev", PLAYER);
    // the Knative Service's URL, its name resolved to Kourier's Service: under Serving's default domain
    // (http://cloudevents-player.podgateway.svc.cluster.local) a cluster-local one, which Kourier's internal gateway
    // serves, as cluster DNS would resolve it for a pod
    const url = new URL(kubectl("get", "services.serving.knative.dev", PLAYER, "-n", SERVICE_NS, "-o", "jsonpath={.status.url}"));
    const kourier = kubectl("get", "service", "kourier-internal", "-n", "kourier-system", "-o", "jsonpath={.spec.clusterIP}");
    browser = await openBrowser([`--host-resolver-rules=MAP ${url.hostname} ${kourier}`]);
    page = await browser.newPage();
    await page.setViewport({ width: 1600, height: 760 });
    const response = await page.goto(url.href, { waitUntil: "networkidle0" });
    assert.equal(response?.status(), 200, `${url.href} through Kourier (${kourier}): ${await response?.text()}`);
    // A Trigger turns Ready a moment before the dispatcher knows its subscribers (an event in between is dropped):
    // probe from the page until the player receives its own event back.
    let n = 0;
    await waitFor("the player to receive its own probe through the Broker", async () => {
      await send(page, `probe-${run}-${n++}`, "io.podgateway.e2e.probe", {});
      await new Promise((resolve) => setTimeout(resolve, 1000));
      return (await rows(page)).some((r) => r.id.startsWith(`probe-${run}`) && r.status === "RECEIVED");
    }, 120_000);
  });
  after(async () => {
    await browser?.close();
    // The player's pod first: a Knative revision pod's grace period is its timeoutSeconds (300 s, which the page's
    // WebSocket needs), and a namespace deleted while such a pod terminates is looked at again only after that
    // estimate, though the pod is gone in seconds: the next test would wait minutes for deploy/'s namespaces.
    kubectl("delete", "services.serving.knative.dev", PLAYER, "-n", SERVICE_NS, "--ignore-not-found");
    // (no pod left at all is fine: kubectlRun does not throw)
    kubectlRun(["wait", "pods", "-n", SERVICE_NS, "-l", `serving.knative.dev/service=${PLAYER}`, "--for=delete", "--timeout=120s"]);
    removeDeploy();
  });

  test("pending for gateway foo: the list shows it sent and the scheduling.done naming the client pod", async () => {
    const id = `foo-${run}`;
    const pod = await send(page, id, "io.podgateway.client.pending", { gateway_name: "foo" });
    const sent = await row(page, "the sent event", (r) => r.id === id && r.status === "SENT");
    assert.equal(sent.type, "io.podgateway.client.pending");
    const done = await row(page, "the scheduling.done", (r) => r.type === "io.podgateway.client.scheduling.done" && r.subject === pod);
    assert.equal(done.status, "RECEIVED");
    assert.equal(done.source, "/podgateway/provisioner");
    // the pod it names exists, made for this request
    assert.equal(kubectl("get", "pod", pod, "-n", CLIENT_NS, "-o", "jsonpath={.metadata.annotations.podgateway\\.io/request-id}"), id);
    await screenshot(page, "cloudevents-player");
  });

  test("an unknown gateway: the list shows the scheduling.failed, and no pod exists", async () => {
    const id = `nope-${run}`;
    const pod = await send(page, id, "io.podgateway.client.pending", { gateway_name: "nope" });
    await row(page, "the sent event", (r) => r.id === id && r.status === "SENT");
    const failed = await row(page, "the scheduling.failed", (r) => r.type === "io.podgateway.client.scheduling.failed" && r.subject === pod);
    assert.equal(failed.status, "RECEIVED");
    assert.equal(kubectl("get", "pod", pod, "-n", CLIENT_NS, "--ignore-not-found", "-o", "name"), "");
    await screenshot(page, "cloudevents-player-failed");
  });
});
