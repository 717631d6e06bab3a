import { type Config, loadConfig } from "../config.ts";
import type { FetcherFactory } from "../kube/rest-client.ts";
import process from "node:process";
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
    if (removeFinalizers) {
      const freed = await removeAllFinalizers(loaded.config, fetcherFor, env);
      log({ msg: "finalizers removed", pods: freed, namespace: loaded.config["client-namespace"] });
      exit(0);
    }
    const service = controller
      ? await createController(loaded.config, fetcherFor, env, log)
      : await createService(loaded.config, fetcherFor, env, log);
    return { config: loaded.config, service, log, shutdownGraceMs: Number(env.SHUTDOWN_GRACE_MS) || 25_000 };
  } catch (error) {
    console.error(`podgateway-provisioner: ${(error as Error).message}`);
    exit(2);
  }
}

/** Exits after writing the log lines still gathered for this turn of the event loop. */
export function exit(code: number): never {
  flushLogs();
  process.exit(code);
}
