/**
 * The single executable's entrypoint (scripts/build.sh compiles it with Bun): flags → service → `Bun.serve`
 * (Bun's native HTTP server, no node:http emulation in between) → signals.
 */
import process from "node:process";
import { bunFetcher } from "../adapter/bun.ts";
import { useSha256 } from "../util/digest.ts";
import { useYamlParser } from "../util/yaml.ts";
import { startup, stopOnSignal } from "./startup.ts";

/** The part of Bun's API used here (the project has no Bun type package). */
declare const Bun: {
  serve(options: { hostname: string; port: number; fetch: (request: Request) => Response | Promise<Response> }): {
    port: number;
    stop(closeActiveConnections?: boolean): Promise<void>;
  };
  YAML: { parse(text: string): unknown };
  SHA256: { hash(input: string, encoding: "hex"): string };
};

// Bun's native YAML parser reads the kubeconfig and the template: the `yaml` package stays out of memory.
useYamlParser(Bun.YAML.parse);
// Bun's native one-shot SHA-256 for the names and ids derived from each event.
useSha256((text) => Bun.SHA256.hash(text, "hex"));

const started = await startup(process.argv.slice(2), process.env, bunFetcher);
const { service, config, log } = started;

const server = Bun.serve({ hostname: config.host, port: config.port, fetch: service.app.fetch });
log({ msg: "listening", host: config.host, port: server.port, kube: service.describe });
/** Background work (the controller's leader election and lifecycle watch) runs until shutdown. */
const background = new AbortController();
/** The controller gives its Lease up when this ends: wait for it before exiting. */
const backgroundDone = service.background?.(background.signal);

const stop = stopOnSignal(started, background, () => server.stop().then(() => backgroundDone));
process.once("SIGTERM", () => stop("SIGTERM"));
process.once("SIGINT", () => stop("SIGINT"));
