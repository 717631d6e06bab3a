/**
 * `GET /clients/{pod}` and `GET /clients?gateway=foo`: clients' states as JSON (pending, ready, failed,
 * deleted), read from the API server so every replica answers alike. Only pods this service created show.
 * The list is paged like the API server's: `limit` (default and maximum 500) and `continue`, the token the
 * previous page answered with; none is answered on the last page.
 */
import { Hono } from "hono";
import type { Pod } from "kubernetes-types/core/v1";
import * as v from "valibot";
import { LabelValue } from "../events/schema.ts";
import { isStatus, isTransient } from "../kube/errors.ts";
import { getPod, listPodsPage, PAGE } from "../kube/pods.ts";
import type { RestClient } from "../kube/rest-client.ts";
import { gatewayOf, LABEL_MANAGED_BY, MANAGED_BY } from "../provision/client-pod.ts";
import { CLIENTS_NOT_POOL, LABEL_POOL } from "../pool/member.ts";
import { clientStatus, type StateRules } from "./client-state.ts";

export interface StatusOptions extends StateRules {
  kube: RestClient;
  namespace: string;
  gatewayLabelKey: string;
  gatewayAnnotationKey: string;
  now?: () => number;
}

/** The `/clients` routes, to mount with `app.route("/clients", clientRoutes(options))`. */
export function clientRoutes(options: StatusOptions): Hono {
  const { kube, namespace } = options;
  const now = options.now ?? Date.now;
  const statusOf = (pod: Pod) => clientStatus(pod, options, now(), gatewayOf(pod, options));
  const routes = new Hono();

  routes.get("/", async (c) => {
    const gateway = c.req.query("gateway");
    if (gateway !== undefined && !v.is(LabelValue, gateway)) {
      return c.json({ error: "gateway must be a gateway name (a Kubernetes label value)" }, 400);
    }
    const limitText = c.req.query("limit") ?? String(PAGE);
    const limit = Number(limitText);
    if (!/^\d+$/.test(limitText) || limit < 1 || limit > PAGE) {
      return c.json({ error: `limit must be a whole number from 1 to ${PAGE}` }, 400);
    }
    // Unclaimed warm pool members are not clients (yet).
    let selector = CLIENTS_NOT_POOL;
    if (gateway !== undefined && options.gatewayLabelKey) selector += `,${options.gatewayLabelKey}=${gateway}`;
    let page;
    try {
      page = await listPodsPage(kube, namespace, { labelSelector: selector, limit, continueToken: c.req.query("continue") || undefined });
    } catch (error) {
      if (isStatus(error, 410)) return c.json({ error: "the continue token expired: list again from the start" }, 410);
      if (isStatus(error, 400)) return c.json({ error: "continue is not a token this list answered with" }, 400);
      throw error;
    }
    const clients = page.items.map(statusOf).filter((client) => gateway === undefined || client.gateway_name === gateway);
    const next = page.metadata?.continue || undefined;
    return c.json({ gateway, clients, ...(next ? { continue: next } : {}) });
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
