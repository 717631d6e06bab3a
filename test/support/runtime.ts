/** The pieces of a test that differ between Node and Deno, chosen once here. */
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
 * The command that runs the service: its entrypoint on this runtime, or with `PGW_TEST_SERVICE=exe` the single
 * executable (`npm run build`), so the same e2e and fault suites run against what ships.
 */
export function serviceCommand(repo: string): { command: string; args: string[] } {
  if (process.env.PGW_TEST_SERVICE === "exe") return { command: `${repo}/dist/podgateway-provisioner`, args: [] };
  if (runtime === "deno") {
    return { command: deno.execPath(), args: ["run", "--allow-all", "--no-check", `${repo}/src/main/deno.ts`] };
  }
  return { command: process.execPath, args: [`${repo}/src/main/node.ts`] };
}
