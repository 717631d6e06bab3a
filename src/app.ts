import type { CloudEventV1 } from "cloudevents";
import { Hono, type MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import * as v from "valibot";
import { type UnreadableRequest, receiveEvent } from "./events/receive.ts";
import { doneEvent, failedEvent, replyWith, type ResultStamp } from "./events/results.ts";
import { describeIssues, PendingData } from "./events/schema.ts";
import type { EventSink } from "./events/sink.ts";
import { type TraceContext, traceOf, withTrace } from "./events/trace.ts";
import { EventTypes } from "./events/types.ts";
import { isTransient, KubeApiError } from "./kube/errors.ts";
import type { Lifecycle } from "./lifecycle/lifecycle.ts";
import type { Logger } from "./observability/log.ts";
import type { Metrics, Outcome } from "./observability/metrics.ts";
import { serveFromPool, type Served, type WarmPool } from "./pool/serve.ts";
import { provisionClient, type ProvisionerOptions } from "./provision/provisioner.ts";
import { pageRoutes } from "./ui/page.ts";

/** Everything the app needs, built by an entrypoint; the app itself touches no runtime API. */
export interface AppOptions {
  provisioner: ProvisionerOptions;
  stamp: ResultStamp;
  /** Knative's K_SINK: results of requests without `Prefer: reply` are delivered there too, before answering. */
  sink?: EventSink;
  metrics: Metrics;
  log: Logger;
  /** Whether this process can serve; backs `/readyz`. Not the API server's health: that is answered per event. */
  ready: () => Promise<boolean>;
  /** Requests handled at once; beyond it, 429 + Retry-After so the sender backs off instead of piling up. */
  maxInFlight: number;
  maxBodyBytes: number;
  /** Sender authentication (Knative OIDC), when configured; runs before the body is read. */
  auth?: MiddlewareHandler;
  /** Client lifecycle: release events, the `/clients` status routes (src/lifecycle/) and the clients page (src/ui/). */
  lifecycle?: Pick<Lifecycle, "release" | "routes">;
  /** `--warm-pool`: gateways whose requests claim a Ready member when one is free (src/pool/). */
  pool?: WarmPool;
}

const KNOWN_TYPES = new Set<string>(Object.values(EventTypes));

type LogFields = Record<string, string | number | undefined>;

/** What an event comes to: the result event to answer with, and what to log about it. */
interface Decision {
  reply: CloudEventV1<unknown>;
  fields: LogFields;
}

/** The service as a function of its dependencies: `createApp(options).fetch(request)` answers one request. */
export function createApp(options: AppOptions): Hono {
  const { metrics, log } = options;
  const app = new Hono();
  let inFlight = 0;

  app.get("/healthz", (c) => c.text("ok"));
  app.get("/readyz", async (c) => (await options.ready()) ? c.text("ok") : c.text("not ready", 503));
  app.get("/metrics", (c) => c.text(metrics.render(), 200, { "content-type": "text/plain; version=0.0.4" }));

  // A refusal sent before the body was read leaves its bytes on the connection, and Node's server then drops
  // the connection without a word: a keep-alive sender would lose its next event. Saying so lets it reconnect.
  app.use("/", async (c, next) => {
    await next();
    if (c.req.method === "POST" && c.res.status >= 400 && !c.req.raw.bodyUsed) c.header("connection", "close");
  });

  const authenticated: MiddlewareHandler = options.auth ?? ((_, next) => next());
  if (options.lifecycle) {
    // Client states name requests and pods: readable by those who may send events, no one else.
    app.use("/clients", authenticated);
    app.use("/clients/*", authenticated);
    app.route("/clients", options.lifecycle.routes);
    // The clients page holds no data (it reads /clients/watch), so it is public: a browser cannot send a
    // bearer token with a navigation.
    app.route("/ui", pageRoutes());
  }
  app.post(
    "/",
    authenticated,
    bodyLimit({
      maxSize: options.maxBodyBytes,
      onError: (c) => c.json({ error: `request body larger than ${options.maxBodyBytes} bytes` }, 413),
    }),
    async (c) => {
      if (inFlight >= options.maxInFlight) {
        metrics.countEvent("unread", "busy");
        return c.json({ error: "too many events in flight; retry later" }, 429, { "retry-after": "1" });
      }
      inFlight++;
      try {
        return await handleEvent(c.req.raw);
      } finally {
        inFlight--;
      }
    },
  );

  /** One event, start to end: read → decide (validate, provision: dedupe + create + verify) → deliver → answer. */
  async function handleEvent(request: Request): Promise<Response> {
    const started = performance.now();
    let event: CloudEventV1<unknown>;
    try {
      event = await receiveEvent(request);
    } catch (error) {
      const unreadable = error as UnreadableRequest;
      if (typeof unreadable.status !== "number") throw error;
      metrics.countEvent("unread", "rejected");
      log({ msg: "request rejected", status: unreadable.status, error: unreadable.message });
      return Response.json({ error: unreadable.message }, { status: unreadable.status });
    }

    const trace = traceOf(event, request.headers);
    const finish = (outcome: Outcome, fields: LogFields = {}) => {
      metrics.countEvent(KNOWN_TYPES.has(event.type) ? event.type : "other", outcome);
      log({ msg: "event", id: event.id, source: event.source, type: event.type, outcome, ms: Math.round(performance.now() - started), traceparent: trace?.traceparent, ...fields });
    };

    const decide = event.type === EventTypes.pending
      ? pending
      : event.type === EventTypes.release && options.lifecycle ? release : undefined;
    if (!decide) {
      finish("ignored");
      return new Response(null, { status: 202 });
    }

    let decision: Decision;
    try {
      decision = await decide(event, trace);
    } catch (error) {
      if (!isTransient(error)) throw error;
      finish("retry", { error: (error as Error).message });
      return retryLater(`Kubernetes is unavailable: ${(error as Error).message}`, error);
    }
    const { fields } = decision;
    const reply = withTrace(decision.reply, trace);

    try {
      // A sender that says `Prefer: reply` (a Knative broker) publishes our HTTP reply itself; a copy to
      // K_SINK would publish it twice. Anyone else (curl, a plain webhook) gets it in both places.
      if (options.sink && !prefersReply(request)) await options.sink.send(reply);
    } catch (error) {
      finish("retry", { ...fields, error: (error as Error).message });
      return retryLater(`result not delivered to K_SINK: ${(error as Error).message}`);
    }
    const failure = reply.type === EventTypes.failed || reply.type === EventTypes.releaseFailed
      ? (reply.data as { reason: string; message: string })
      : undefined;
    finish(failure ? "failed" : "done", { ...fields, reason: failure?.reason, error: failure?.message });
    return replyWith(reply);
  }

  /** `io.podgateway.client.pending`: the routed client pod, or why there will be none. */
  async function pending(event: CloudEventV1<unknown>, trace?: TraceContext): Promise<Decision> {
    const started = performance.now();
    const data = v.safeParse(PendingData, decodeData(event.data));
    if (!data.success) {
      return { reply: failedEvent(options.stamp, event, { reason: "InvalidEventData", message: describeIssues(data.issues) }), fields: {} };
    }
    const gateway = data.output.gateway_name;
    const request = { source: event.source, id: event.id, gatewayName: gateway, trace };
    const result: Served = options.pool?.sizes[gateway]
      ? await serveFromPool(options.provisioner, options.pool, request)
      : await provisionClient(options.provisioner, request).then((result) => result.ok ? { ...result, servedFrom: "cold" as const } : result);
    metrics.observeProvisioning((performance.now() - started) / 1000);
    const reply = result.ok
      ? doneEvent(options.stamp, event, {
        pod_name: result.name,
        namespace: result.namespace,
        gateway_name: gateway,
        message: `client pod ${result.namespace}/${result.name} is routed by gateway ${gateway}${result.servedFrom === "pool" ? " (a warm pool member, Ready)" : ""}`,
        served_from: result.servedFrom,
        // A warm client's time is its claim's (the pod is older than the request); a cold one's, its pod's creation.
      }, result.at ?? result.pod.metadata?.creationTimestamp)
      : failedEvent(options.stamp, event, { reason: result.reason, message: result.message, gateway_name: gateway }, result.name);
    return { reply, fields: { gateway, pod: result.name, served_from: result.ok ? result.servedFrom : undefined } };
  }

  /** `io.podgateway.client.release`: the client pod deleted (src/lifecycle/release.ts). */
  async function release(event: CloudEventV1<unknown>): Promise<Decision> {
    const reply = await options.lifecycle!.release(event, decodeData(event.data));
    return { reply, fields: { pod: reply.subject } };
  }

  app.onError((error, c) => {
    log({ msg: "unexpected error", error: error.message });
    return c.json({ error: "internal error" }, 500);
  });

  return app;
}

/** 503 (or the API server's own 429) with its Retry-After: the sender redelivers, and nothing is lost. */
function retryLater(message: string, cause?: unknown): Response {
  const status = cause instanceof KubeApiError && cause.code === 429 ? 429 : 503;
  const retryAfter = cause instanceof KubeApiError ? cause.retryAfterSeconds : undefined;
  return Response.json({ error: `${message}; retry later` }, { status, headers: retryAfter ? { "retry-after": String(retryAfter) } : {} });
}

/** Whether the sender forwards reply events itself (Knative data plane: `Prefer: reply`). */
function prefersReply(request: Request): boolean {
  return /(^|[\s,])reply($|[\s,;])/i.test(request.headers.get("prefer") ?? "");
}

/** Event data as JSON: it arrives as text or bytes when the sender did not say `application/json`. */
function decodeData(data: unknown): unknown {
  const text = data instanceof Uint8Array ? new TextDecoder().decode(data) : data;
  if (typeof text !== "string") return data;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
