/// <reference lib="dom" />
/**
 * The clients page's browser code. Written as TypeScript functions so that it is type-checked and unit-tested
 * like the rest, and served as their own source text (page.ts: `String(fn)`), so no bundler and no file read
 * at run time: Node, Deno and the single executable serve it alike. The rule that makes that work: a function
 * here uses only its parameters, the other exported functions of this file and browser globals — never an
 * import or a value defined outside it (the served text has neither).
 */
import type { ClientStatus } from "../lifecycle/client-state.ts";

/** One Server-Sent Event as the page uses it. */
export interface ServerEvent {
  event: string;
  data: string;
}

/**
 * Splits the complete events off the `text/event-stream` text received so far; `rest` is the unfinished tail
 * to prepend to the next chunk. Comment lines (`: keepalive`) and events without data are dropped.
 */
export function parseEvents(text: string): { events: ServerEvent[]; rest: string } {
  const blocks = text.split("\n\n");
  const rest = blocks.pop() ?? "";
  const events: ServerEvent[] = [];
  for (const block of blocks) {
    let event = "message";
    const data: string[] = [];
    for (const line of block.split("\n")) {
      if (line === "" || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
    }
    if (data.length > 0) events.push({ event, data: data.join("\n") });
  }
  return { events, rest };
}

/** How long ago, the way `kubectl get pods` says it: `45s`, `12m`, `3h5m`, `2d4h`. */
export function formatAge(ms: number): string {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours}h${minutes % 60 ? `${minutes % 60}m` : ""}`;
  const days = Math.floor(hours / 24);
  return `${days}d${hours % 24 ? `${hours % 24}h` : ""}`;
}

/** One client as a row shows it. */
export interface ClientRow {
  pod: string;
  /** Our state, with the failure's reason: `ready`, `failed (Evicted)`. */
  state: string;
  phase: string;
  age: string;
  node: string;
  gateway: string;
  /** Whether a release makes sense: not for a client already being deleted. */
  releasable: boolean;
}

/** One gateway's section. */
export interface GatewayView {
  gateway: string;
  /** e.g. `3 clients: 2 ready, 1 pending` */
  summary: string;
  rows: ClientRow[];
  /** Clients beyond `maxRows`, not drawn. */
  hidden: number;
}

/**
 * What the page shows: one section per gateway (by name; clients without one last, as `(none)`), newest client
 * first, at most `maxRows` rows each.
 */
export function viewOf(clients: Iterable<ClientStatus>, now: number, maxRows: number): GatewayView[] {
  const byGateway = new Map<string, ClientStatus[]>();
  for (const client of clients) {
    const gateway = client.gateway_name ?? "(none)";
    byGateway.set(gateway, [...(byGateway.get(gateway) ?? []), client]);
  }
  const gateways = [...byGateway.keys()].sort((a, b) => (a === "(none)" ? 1 : b === "(none)" ? -1 : a.localeCompare(b)));
  return gateways.map((gateway) => {
    const members = byGateway.get(gateway)!.sort((a, b) =>
      (b.created_at ?? "").localeCompare(a.created_at ?? "") || a.pod_name.localeCompare(b.pod_name)
    );
    const counts = new Map<string, number>();
    for (const client of members) counts.set(client.state, (counts.get(client.state) ?? 0) + 1);
    const states = ["ready", "pending", "failed", "deleted"].filter((state) => counts.has(state)).map((state) => `${counts.get(state)} ${state}`);
    return {
      gateway,
      summary: `${members.length} client${members.length === 1 ? "" : "s"}: ${states.join(", ")}`,
      rows: members.slice(0, maxRows).map((client) => ({
        pod: client.pod_name,
        state: client.reason ? `${client.state} (${client.reason})` : client.state,
        phase: client.phase ?? "",
        age: client.created_at ? formatAge(now - Date.parse(client.created_at)) : "",
        node: client.node_name ?? "",
        gateway: client.gateway_name ?? "",
        releasable: client.state !== "deleted",
      })),
      hidden: Math.max(0, members.length - maxRows),
    };
  });
}

/** A fresh CloudEvent id; `crypto.randomUUID` exists only in secure contexts, plain http to a host is none. */
export function eventId(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** Draws the sections into `root`; keeps keyboard focus on the release button it was on. */
export function renderGateways(root: HTMLElement, views: GatewayView[], releasing: ReadonlySet<string>): void {
  const focused = (document.activeElement as HTMLElement | null)?.dataset?.pod;
  const make = (tag: string, text?: string, attributes: Record<string, string> = {}) => {
    const element = document.createElement(tag);
    if (text !== undefined) element.textContent = text;
    for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
    return element;
  };
  const sections = views.map((view, index) => {
    const headingId = `gateway-${index}`;
    const section = make("section", undefined, { "aria-labelledby": headingId, "data-gateway": view.gateway });
    section.append(make("h2", `Gateway ${view.gateway}`, { id: headingId }), make("p", view.summary, { class: "summary" }));
    const table = make("table");
    table.append(make("caption", `Clients routed through gateway ${view.gateway}, newest first`));
    const head = make("tr");
    for (const title of ["Pod", "State", "Phase", "Age", "Node", "Routed through", "Release"]) head.append(make("th", title, { scope: "col" }));
    const thead = make("thead");
    const tbody = make("tbody");
    thead.append(head);
    table.append(thead, tbody);
    for (const row of view.rows) {
      const tr = make("tr", undefined, { "data-pod": row.pod, "data-state": row.state.split(" ")[0]! });
      tr.append(make("th", row.pod, { scope: "row" }), make("td", row.state, { class: "state" }), make("td", row.phase), make("td", row.age), make("td", row.node), make("td", row.gateway));
      const busy = releasing.has(row.pod);
      const button = make("button", busy ? "Releasing…" : "Release", { type: "button", "data-pod": row.pod, "aria-label": `Release ${row.pod}` });
      if (busy || !row.releasable) button.setAttribute("disabled", "");
      const cell = make("td");
      cell.append(button);
      tr.append(cell);
      tbody.append(tr);
    }
    section.append(table);
    if (view.hidden > 0) section.append(make("p", `${view.hidden} more not shown: GET /clients?gateway=${view.gateway} pages through all of them.`));
    return section;
  });
  root.replaceChildren(...(sections.length > 0 ? sections : [make("p", "No clients.")]));
  if (focused) root.querySelector<HTMLElement>(`button[data-pod="${CSS.escape(focused)}"]`)?.focus();
}

/**
 * The page: follows `../clients/watch` (fetch, not EventSource, which cannot send the bearer token), redraws,
 * announces changes in the live region, reconnects with backoff whenever the stream ends, and releases a client
 * with an `io.podgateway.client.release` event POSTed to the service, the same authenticated path as any sender's.
 */
export function startPage(): void {
  const element = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
  const gateway = new URLSearchParams(location.search).get("gateway") ?? "";
  const tokenKey = "podgateway-provisioner-token";
  element<HTMLInputElement>("gateway").value = gateway;
  element<HTMLInputElement>("token").value = sessionStorage.getItem(tokenKey) ?? "";
  element<HTMLFormElement>("filter").addEventListener("submit", () => sessionStorage.setItem(tokenKey, element<HTMLInputElement>("token").value.trim()));
  const status = element("status");
  const root = element("gateways");
  const clients = new Map<string, ClientStatus>();
  const releasing = new Set<string>();
  const announce = (text: string) => (status.textContent = text);
  const authorization = (): Record<string, string> => {
    const token = sessionStorage.getItem(tokenKey);
    return token ? { authorization: `Bearer ${token}` } : {};
  };
  let drawing = false;
  const redraw = () => {
    if (drawing) return;
    drawing = true;
    requestAnimationFrame(() => {
      drawing = false;
      renderGateways(root, viewOf(clients.values(), Date.now(), 500), releasing);
    });
  };
  setInterval(redraw, 5_000); // ages

  const apply = ({ event, data }: ServerEvent) => {
    const body = JSON.parse(data);
    if (event === "snapshot") {
      clients.clear();
      for (const client of body.clients as ClientStatus[]) clients.set(client.pod_name, client);
      root.setAttribute("aria-busy", "false");
      announce(`Live: ${clients.size} client${clients.size === 1 ? "" : "s"}${gateway ? ` of gateway ${gateway}` : ""}.`);
    } else if (event === "upsert") {
      const client = body as ClientStatus;
      const before = clients.get(client.pod_name);
      clients.set(client.pod_name, client);
      if (!before) announce(`New client ${client.pod_name} (${client.state}) of gateway ${client.gateway_name ?? "(none)"}.`);
      else if (before.state !== client.state) announce(`${client.pod_name} is ${client.state}.`);
    } else if (event === "remove") {
      clients.delete(body.pod_name);
      announce(`${body.pod_name} is gone.`);
    }
    redraw();
  };

  const follow = async () => {
    for (let failures = 0; ; failures++) {
      try {
        const query = gateway ? `?gateway=${encodeURIComponent(gateway)}` : "";
        const response = await fetch(`../clients/watch${query}`, { headers: authorization(), cache: "no-store" });
        if (response.status === 401 || response.status === 403) {
          announce(`Not allowed (HTTP ${response.status}): enter a bearer token the service accepts, then Show.`);
          return;
        }
        if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          const parsed = parseEvents(buffer + value);
          buffer = parsed.rest;
          parsed.events.forEach(apply);
          failures = 0;
        }
      } catch (error) {
        if (failures > 0) announce(`Connection lost (${(error as Error).message}).`);
      }
      const seconds = Math.min(10, 2 ** failures);
      if (failures > 0) announce(`Disconnected; reconnecting in ${seconds} s.`);
      await new Promise((resolve) => setTimeout(resolve, failures > 0 ? seconds * 1000 : 250));
    }
  };

  const release = async (pod: string) => {
    releasing.add(pod);
    redraw();
    announce(`Releasing ${pod}…`);
    try {
      const response = await fetch("../", {
        method: "POST",
        headers: {
          ...authorization(),
          "content-type": "application/json",
          "ce-specversion": "1.0",
          "ce-type": "io.podgateway.client.release",
          "ce-source": "/podgateway/clients-page",
          "ce-id": eventId(),
        },
        body: JSON.stringify({ pod_name: pod }),
      });
      const answer = await response.json().catch(() => ({}));
      if (response.headers.get("ce-type") === "io.podgateway.client.release.done") announce(`${pod} released.`);
      else announce(`Release of ${pod} failed: ${answer.message ?? answer.error ?? `HTTP ${response.status}`}.`);
    } catch (error) {
      announce(`Release of ${pod} failed: ${(error as Error).message}.`);
    } finally {
      releasing.delete(pod);
      redraw();
    }
  };
  root.addEventListener("click", (event) => {
    const button = (event.target as Element).closest<HTMLButtonElement>("button[data-pod]");
    if (button && !button.disabled) void release(button.dataset.pod!);
  });
  void follow();
}
