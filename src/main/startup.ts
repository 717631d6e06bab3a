import { type Config, hasWarmPool, loadConfig } from "../config.ts";
import { readFile } from "node:fs/promises";
import process from "node:process";
import { connectKube } from "../kube/connect.ts";
import { isTransient } from "../kube/errors.ts";
import type { FetcherFactory } from "../kube/rest-client.ts";
import { flushLogs, jsonLogger, type Logger } from "../observability/log.ts";
import { createService, type Service } from "../service.ts";
import { createController, removeAllFinalizers } from "../controller/controller.ts";

/** What every entrypoint gets back: a service to serve, or the process has already exited. */
export interface Started {
  config: Config;
  service: Service;
  log: Logger;
  /** Knative gives a pod 30 s after SIGTERM by default; finish well inside it. */
  shutdownGraceMs: number;
}

/**
 * The runtime-neutral part of start-up: parse flags, connect to Kubernetes. `--help` prints and exits 0;
 * a bad flag or an unreadable kubeconfig prints one clear line and exits 2 before anything listens.
 * `controller` as the first argument starts the controller instead of the service (src/controller/);
 * `controller --remove-finalizers` frees every client pod and exits (the uninstall step).
 */
export async function startup(args: string[], env: Record<string, string | undefined>, fetcherFor: FetcherFactory): Promise<Started> {
  const log = jsonLogger;
  const controller = args[0] === "controller";
  const removeFinalizers = controller && args.includes("--remove-finalizers");
  const options = (controller ? args.slice(1) : args).filter((arg) => arg !== "--remove-finalizers" || !controller);
  try {
    const loaded = loadConfig(options, env);
    if ("help" in loaded) {
      console.log(loaded.help);
      exit(0);
    }
    const { config } = loaded;
    const connection = () => connectKube({ kubeconfig: config.kubeconfig, timeoutMs: config["kube-timeout-ms"] }, fetcherFor, env);
    if (removeFinalizers) {
      const freed = await removeAllFinalizers(config, await connection());
      log({ msg: "finalizers removed", pods: freed, namespace: config["client-namespace"] });
      exit(0);
    }
    // With Eventing's authentication-oidc on, the SinkBinding mounts a token for K_SINK's audience
    const sinkFile = config["sink-token-file"];
    const sinkToken = () => readFile(sinkFile, "utf8").then((text) => text.trim() || undefined, () => undefined);
    // The template is read (and its own rules checked) before Kubernetes is asked anything. The controller reads
    // it for --warm-pool: it makes the pool's members.
    const templateFile = config["client-pod-template"];
    const template = templateFile && (!controller || hasWarmPool(config)) ? await readTemplate(templateFile) : undefined;
    const service: Service = controller
      ? await createController(config, await connection(), env, log, sinkToken, template)
      : await createService(config, await connection(), env, log, template, sinkToken);
    return { config, service, log, shutdownGraceMs: config["shutdown-grace-ms"] };
  } catch (error) {
    console.error(`podgateway-provisioner: ${(error as Error).message}`);
    // 2: the configuration is wrong; 1: it could not be checked now (API server unreachable), a restart may do.
    exit(isTransient((error as Error).cause) ? 1 : 2);
  }
}

async function readTemplate(file: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (error) {
    throw new Error(`--client-pod-template (CLIENT_POD_TEMPLATE) ${file} cannot be read: ${(error as Error).message}`);
  }
}

/** Exits after writing the log lines still gathered for this turn of the event loop. */
export function exit(code: number): never {
  flushLogs();
  process.exit(code);
}

/**
 * SIGTERM (Knative scale-down, rolling update): stop accepting, let in-flight events finish (`close` resolves
 * when they have), exit 0; exit 1 if they outlive the grace period. `background` is aborted at once.
 */
export function stopOnSignal(started: Started, background: AbortController, close: () => Promise<unknown>): (signal: string) => void {
  return (signal) => {
    started.log({ msg: "shutting down", signal });
    background.abort();
    const deadline = setTimeout(() => {
      started.log({ msg: "in-flight requests outlived the shutdown grace period" });
      exit(1);
    }, started.shutdownGraceMs);
    close().then(() => {
      clearTimeout(deadline);
      started.log({ msg: "stopped" });
      exit(0);
    });
  };
}
