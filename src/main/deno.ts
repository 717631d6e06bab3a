/**
 * Deno entrypoint: flags → service → `Deno.serve` → signals. `deno task dev` runs it.
 */
import { createHash } from "node:crypto";
import { denoFetcher } from "../adapter/deno.ts";
import { useSha256 } from "../util/digest.ts";
import { startup, stopOnSignal } from "./startup.ts";

// Deno's node:crypto hashes natively (Web Crypto's digest is async).
useSha256((text) => createHash("sha256").update(text).digest("hex"));

const started = await startup(Deno.args, Deno.env.toObject(), denoFetcher);
const { service, config, log } = started;

const server = Deno.serve({
  hostname: config.host,
  port: config.port,
  onListen: ({ port }) => log({ msg: "listening", host: config.host, port, kube: service.describe }),
}, service.app.fetch);
/** Background work (the controller's leader election and lifecycle watch) runs until shutdown. */
const background = new AbortController();
/** The controller gives its Lease up when this ends: wait for it before exiting. */
const backgroundDone = service.background?.(background.signal);

const stop = stopOnSignal(started, background, () => server.shutdown().then(() => backgroundDone));
Deno.addSignalListener("SIGTERM", () => stop("SIGTERM"));
Deno.addSignalListener("SIGINT", () => stop("SIGINT"));
