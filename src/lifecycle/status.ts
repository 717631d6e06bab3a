/**
 * `GET /clients/{pod}` and `GET /clients?gateway=foo`: clients' states as JSON (pending, ready, failed,
 * deleted), read from the API server so every replica answers alike. Only pods this service created show.
 * The list is paged like the API server's: `limit` (default and maximum 500) and `continue`, the token the
 * previous page answered with; none is answered on the last page. `GET /clients/watch?gateway=foo`: the same
 * states, live, as Server-Sent Events (clients-stream.ts).
 */
import { Hono } from "hono";
import type { Pod } from "kubernetes-types/core/v1";
import * as v from "valibot";
import { LabelValue } from "../events/schema.ts";
import { isStatus, isTransient } from "../kube/errors.ts";
import { getPod, listPodsPage, PAGE } from "../kube/pods.ts";
import type { StreamingRestClient } from "../kube/rest-client.ts";
import type { Logger } from "../observability/log.ts";
import { gatewayOf, LABEL_MANAGED_BY, MANAGED_BY } from "../provision/client-pod.ts";
import { CLIENTS_NOT_POOL, LABEL_POOL } from "../pool/member.ts";
import { clientStatus, type StateRules } from "./client-state.ts";
import { clientsStream } from "./clients-stream.ts";

export interface StatusOptions extends StateRules {
  kube: StreamingRestClient;
  namespace: string;
  gatewayLabelKey: string;
  gatewayAnnotationKey: string;
  log: Logger;
  now?: () => number;
  /** Streams open at once (each holds a watch of the API server); beyond it, 429. */
  maxStreams?: number;
}

const GATEWAY_RULE = "gateway must be a gateway name (a Kubernetes label value)";

/** The `/clients` routes, to mount with `app.route("/clients", clientRoutes(options))`. */
export function clientRoutes(options: StatusOptions): Hono {
  const { kube, namespace } = options;
  const now = options.now ?? Date.now;
  const statusOf = (pod: Pod) => clientStatus(pod, options, now(), gatewayOf(pod, options));
  const routes = new Hono();
  /** Our clients, of one gateway when its pods carry a label to select by. */
  const selectorFor = (gateway: string | undefined) =>
    // unclaimed warm pool members are not clients (yet)
    CLIENTS_NOT_POOL + (gateway !== undefined && options.gatewayLabelKey ? `,${options.gatewayLabelKey}=${gateway}` : "");
  const maxStreams = options.maxStreams ?? 32;
  let streams = 0;

  routes.get("/", async (c) => {
    const gateway = c.req.query("gateway");
    if (gateway !== undefined && !v.is(LabelValue, gateway)) return c.json({ error: GATEWAY_RULE }, 400);
    const limitText = c.req.query("limit") ?? String(PAGE);
    const limit = Number(limitText);
    if (!/^\d+$/.test(limitText) || limit < 1 || limit > PAGE) {
      return c.json({ error: `limit must be a whole number from 1 to ${PAGE}` }, 400);
    }
    let page;
    try {
      page = await listPodsPage(kube, namespace, { labelSelector: selectorFor(gateway), limit, continueToken: c.req.query("continue") || undefined });
    } catch (error) {
      if (isStatus(error, 410)) return c.json({ error: "the continue token expired: list again from the start" }, 410);
      if (isStatus(error, 400)) return c.json({ error: "continue is not a token this list answered with" }, 400);
      throw error;
    }
    const clients = page.items.map(statusOf).filter((client) => gateway === undefined || client.gateway_name === gateway);
    const next = page.metadata?.continue || undefined;
    return c.json({ gateway, clients, ...(next ? { continue: next } : {}) });
  });

  routes.get("/watch", (c) => {
    const gateway = c.req.query("gateway") || undefined;
    if (gateway !== undefined && !v.is(LabelValue, gateway)) return c.json({ error: GATEWAY_RULE }, 400);
    if (streams >= maxStreams) return c.json({ error: `${maxStreams} client streams are open already; retry later` }, 429, { "retry-after": "5" });
    streams++;
    return clientsStream(c, { kube, namespace, labelSelector: selectorFor(gateway), gateway, statusOf, log: options.log, onEnd: () => streams-- });
  });

  routes.get("/:pod", async (c) => {
    const name = c.req.param("pod");
    let pod: Pod | undefined;
    try {
      pod = await getPod(kube, namespace, name);
    } catch (error) {
      if (!isStatus(error, 404)) throw error;
    }
    if (!pod || pod.metadata?.labels?.[LABEL_MANAGED_BY] !== MANAGED_BY || pod.metadata.labels[LABEL_POOL] !== undefined) {
      return c.json({ error: `no client pod ${namespace}/${name}: never created, or deleted` }, 404);
    }
    return c.json(statusOf(pod));
  });

  routes.onError((error, c) => {
    if (isTransient(error)) return c.json({ error: `Kubernetes is unavailable: ${error.message}; retry later` }, 503, { "retry-after": "1" });
    return c.json({ error: "internal error" }, 500);
  });
  return routes;
}
