/**
 * Node entrypoint (also the single executable's, built with Bun): flags → service → HTTP server → signals.
 * Usage: `node src/main/node.ts --help`.
 */
import { serve } from "@hono/node-server";
import type { Server } from "node:http";
import { undiciFetcher } from "../adapter/node.ts";
import { exit, startup } from "./startup.ts";

const started = await startup(process.argv.slice(2), process.env, undiciFetcher);
const { service, config, log } = started;

const server = serve({ fetch: service.app.fetch, hostname: config.host, port: config.port }, (info) => {
  log({ msg: "listening", host: config.host, port: info.port, kube: service.describe });
}) as Server;
/** Background work (the controller's leader election and lifecycle watch) runs until shutdown. */
const background = new AbortController();
/** The controller gives its Lease up when this ends: wait for it before exiting. */
const backgroundDone = service.background?.(background.signal);

/** SIGTERM (Knative scale-down, rolling update): stop accepting, let in-flight events finish, exit. */
const stop = (signal: string) => {
  log({ msg: "shutting down", signal });
  background.abort();
  server.close(async () => {
    await backgroundDone;
    log({ msg: "stopped" });
    exit(0);
  });
  server.closeIdleConnections();
  setTimeout(() => {
    log({ msg: "in-flight requests outlived the shutdown grace period" });
    exit(1);
  }, started.shutdownGraceMs).unref();
};
process.once("SIGTERM", () => stop("SIGTERM"));
process.once("SIGINT", () => stop("SIGINT"));
