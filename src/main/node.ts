/**
 * Node entrypoint: flags → service → HTTP server → signals.
 * Usage: `node src/main/node.ts --help`.
 */
import { serve } from "@hono/node-server";
import { createHash } from "node:crypto";
import type { Server } from "node:http";
import { undiciFetcher } from "../adapter/node.ts";
import { setLogOutput } from "../observability/log.ts";
import { useSha256 } from "../util/digest.ts";
import { startup, stopOnSignal } from "./startup.ts";

setLogOutput((text) => process.stdout.write(text));
useSha256((text) => createHash("sha256").update(text).digest("hex"));

const started = await startup(process.argv.slice(2), process.env, undiciFetcher);
const { service, config, log } = started;

const server = serve({ fetch: service.app.fetch, hostname: config.host, port: config.port }, (info) => {
  log({ msg: "listening", host: config.host, port: info.port, kube: service.describe });
}) as Server;
/** Background work (the controller's leader election and lifecycle watch) runs until shutdown. */
const background = new AbortController();
/** The controller gives its Lease up when this ends: wait for it before exiting. */
const backgroundDone = service.background?.(background.signal);

const stop = stopOnSignal(started, background, () => {
  const closed = new Promise((resolve) => server.close(resolve));
  server.closeIdleConnections();
  return closed.then(() => backgroundDone);
});
process.once("SIGTERM", () => stop("SIGTERM"));
process.once("SIGINT", () => stop("SIGINT"));
