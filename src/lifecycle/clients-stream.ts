/**
 * `GET /clients/watch?gateway=foo`: the clients as Server-Sent Events, for the clients page (src/ui/). Events:
 * `snapshot` `{clients}` (every client now: first, and again whenever the API server made us list anew),
 * `upsert` (one client appeared or changed: a ClientStatus) and `remove` `{pod_name}` (gone). One list + watch of
 * the API server per open stream (watch.ts), ended when the browser leaves; a reconnecting browser starts again
 * from a snapshot, so a reload or a cut connection (a proxy's request timeout) loses nothing.
 */
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import type { Pod } from "kubernetes-types/core/v1";
import type { StreamingRestClient } from "../kube/rest-client.ts";
import type { Logger } from "../observability/log.ts";
import type { ClientStatus } from "./client-state.ts";
import { watchPods } from "./watch.ts";

export interface ClientsStreamOptions {
  kube: StreamingRestClient;
  namespace: string;
  labelSelector: string;
  /** Only this gateway's clients (also when the pods carry no gateway label to select by). */
  gateway?: string;
  statusOf: (pod: Pod) => ClientStatus;
  log: Logger;
  /** A comment line this often: idle proxies keep the connection, and a browser that left is noticed. */
  keepAliveMs?: number;
  /** Called once the stream is over (the browser left). */
  onEnd?: () => void;
}

/** Answers one stream request; its list + watch ends when the client disconnects. */
export function clientsStream(c: Context, options: ClientsStreamOptions): Response {
  const { gateway, statusOf } = options;
  const wanted = (client: ClientStatus) => gateway === undefined || client.gateway_name === gateway;
  return streamSSE(c, async (stream) => {
    const left = new AbortController();
    stream.onAbort(() => left.abort());
    const send = (event: string, data: unknown) => stream.writeSSE({ event, data: JSON.stringify(data) });
    const keepAlive = setInterval(() => void stream.write(": keepalive\n\n"), options.keepAliveMs ?? 15_000);
    try {
      await watchPods<ClientStatus>(
        { kube: options.kube, namespace: options.namespace, labelSelector: options.labelSelector, log: options.log, keep: statusOf },
        {
          onList: (clients) => send("snapshot", { clients: clients.filter(wanted) }),
          onChange: (type, pod) => {
            const client = statusOf(pod);
            if (!wanted(client)) return;
            return type === "DELETED" ? send("remove", { pod_name: client.pod_name }) : send("upsert", client);
          },
        },
        AbortSignal.any([left.signal, c.req.raw.signal]),
      );
    } finally {
      clearInterval(keepAlive);
      options.onEnd?.();
    }
  });
}
