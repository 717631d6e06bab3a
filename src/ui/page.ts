/**
 * The clients page, `GET /ui/clients[?gateway=foo]`: which clients each gateway has, their state, phase, age and
 * node, live, with a release button. Read-only apart from that button. The page itself holds no data and needs
 * no token; what it reads (`/clients/watch`) and sends (a release event to `/`) passes the service's sender
 * authentication like any other request. Served from strings, so the single executable needs no files.
 */
import { Hono } from "hono";
import { eventId, formatAge, parseEvents, renderGateways, startPage, viewOf } from "./clients-browser.ts";

const HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Clients · pod-gateway provisioner</title>
<link rel="stylesheet" href="clients.css">
<script src="clients.js" defer></script>
</head>
<body>
<header>
<h1>Clients</h1>
<p>Client pods of the pod-gateway provisioner, per gateway, as they change.</p>
</header>
<main>
<form id="filter" role="search" method="get">
<label for="gateway">Gateway</label>
<input id="gateway" name="gateway" placeholder="all gateways" pattern="[A-Za-z0-9]([\\-A-Za-z0-9_.]*[A-Za-z0-9])?" maxlength="63">
<label for="token">Bearer token <small>(when the service asks for one)</small></label>
<input id="token" type="password" autocomplete="off">
<button type="submit">Show</button>
</form>
<p id="status" role="status" aria-live="polite">Connecting…</p>
<div id="gateways" aria-busy="true"></div>
</main>
</body>
</html>
`;

const CSS = `:root { font-family: system-ui, sans-serif; color: #1b1b1b; background: #fff; }
body { margin: 0 auto; max-width: 72rem; padding: 1rem; }
h1 { margin: 0 0 .25rem; }
form { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; margin: 1rem 0; }
input { padding: .3rem; }
#status { padding: .4rem .6rem; background: #eef3f8; border-left: 4px solid #2b5d8a; }
table { border-collapse: collapse; width: 100%; font-size: .92rem; }
caption { text-align: left; color: #444; padding: .25rem 0; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #ddd; }
tbody th { font-family: ui-monospace, monospace; font-weight: normal; }
tr[data-state="ready"] .state { color: #0b6b2b; font-weight: 600; }
tr[data-state="pending"] .state { color: #7a5200; }
tr[data-state="failed"] .state, tr[data-state="deleted"] .state { color: #a11; }
button { padding: .25rem .6rem; }
:focus-visible { outline: 3px solid #2b5d8a; outline-offset: 2px; }
`;

/** The browser code: its functions' own text, then the call that starts the page. */
const SCRIPT = `"use strict";
(() => {
${[parseEvents, formatAge, viewOf, eventId, renderGateways, startPage].map(String).join("\n")}
${startPage.name}();
})();
`;

const HEADERS = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-cache",
};

/** The page's three files, to mount with `app.route("/ui", pageRoutes())`. */
export function pageRoutes(): Hono {
  const routes = new Hono();
  routes.get("/clients", (c) => c.body(HTML, 200, { ...HEADERS, "content-type": "text/html; charset=utf-8" }));
  routes.get("/clients.css", (c) => c.body(CSS, 200, { ...HEADERS, "content-type": "text/css; charset=utf-8" }));
  routes.get("/clients.js", (c) => c.body(SCRIPT, 200, { ...HEADERS, "content-type": "text/javascript; charset=utf-8" }));
  return routes;
}
