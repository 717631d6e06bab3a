/** The pieces of a test that differ between Node and Deno, chosen once here. */
import { type ServiceCommand, serviceCommand } from "../../bench/lib/service.ts";
import type { FetcherFactory } from "../../src/kube/rest-client.ts";

// deno-lint-ignore no-explicit-any
const deno = (globalThis as any).Deno;

/** The runtime running this test file; e2e tests start the service with the same one. */
export const runtime: "deno" | "node" = deno ? "deno" : "node";

/** What runs the service in e2e tests: this runtime, or the single executable (`PGW_TEST_SERVICE=exe`). */
export const serviceRuntime: "deno" | "node" | "exe" = process.env.PGW_TEST_SERVICE === "exe" ? "exe" : runtime;

/** A TLS fetch for the current runtime, from the service's own adapters. */
export async function fetcherFactory(): Promise<FetcherFactory> {
  // A computed specifier keeps tsc (which has no Deno types) from following the Deno-only adapter.
  const denoAdapter = "../../src/adapter/deno.ts";
  if (runtime === "deno") return (await import(denoAdapter)).denoFetcher as FetcherFactory;
  return (await import("../../src/adapter/node.ts")).undiciFetcher;
}

/**
 * The command that runs the service under test: its entrypoint on this runtime, or with `PGW_TEST_SERVICE=exe` the
 * single executable (`npm run build`), so the same e2e and fault suites run against what ships. The commands
 * themselves are bench/lib/service.ts's `serviceCommand`, the one definition the bench uses too.
 */
export function testedServiceCommand(repo: string): ServiceCommand {
  const command = serviceCommand(repo, serviceRuntime);
  if (!command) throw new Error(`no ${serviceRuntime} to run the service with: npm ci${serviceRuntime === "exe" ? " && npm run build" : ""}`);
  return command;
}
