/**
 * Deno entrypoint: flags → service → `Deno.serve` → signals. `deno task dev` runs it.
 */
import { denoFetcher } from "../adapter/deno.ts";
import { exit, startup } from "./startup.ts";

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

/** SIGTERM (Knative scale-down, rolling update): stop accepting, let in-flight events finish, exit. */
const stop = (signal: string) => {
  log({ msg: "shutting down", signal });
  background.abort();
  const deadline = setTimeout(() => {
    log({ msg: "in-flight requests outlived the shutdown grace period" });
    exit(1);
  }, started.shutdownGraceMs);
  server.shutdown().then(() => backgroundDone).then(() => {
    clearTimeout(deadline);
    log({ msg: "stopped" });
    exit(0);
  });
};
Deno.addSignalListener("SIGTERM", () => stop("SIGTERM"));
Deno.addSignalListener("SIGINT", () => stop("SIGINT"));
