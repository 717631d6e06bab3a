/**
 * `GET /clients/{pod}` and `GET /clients?gateway=foo`: clients' states as JSON (pending, ready, failed,
 * deleted), read from the API server so every replica answers alike. Only pods this service created show.
 */
import { Hono } from "hono";
import type { Pod } from "kubernetes-types/core/v1";
import * as v from "valibot";
import { LabelValue } from "../events/schema.ts";
import { isStatus, isTransient } from "../kube/errors.ts";
import { getPod, listPods } from "../kube/pods.ts";
import type { RestClient } from "../kube/rest-client.ts";
import { gatewayOf, LABEL_MANAGED_BY, MANAGED_BY } from "../provision/client-pod.ts";
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
    let selector = `${LABEL_MANAGED_BY}=${MANAGED_BY}`;
    if (gateway !== undefined && options.gatewayLabelKey) selector += `,${options.gatewayLabelKey}=${gateway}`;
    const list = await listPods(kube, namespace, { labelSelector: selector });
    const clients = list.items.map(statusOf).filter((client) => gateway === undefined || client.gateway_name === gateway);
    return c.json({ gateway, clients });
  });

  routes.get("/:pod", async (c) => {
    const name = c.req.param("pod");
    let pod: Pod | undefined;
    try {
      pod = await getPod(kube, namespace, name);
    } catch (error) {
      if (!isStatus(error, 404)) throw error;
    }
    if (!pod || pod.metadata?.labels?.[LABEL_MANAGED_BY] !== MANAGED_BY) {
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
