/**
 * The in-process half of the fuzzing: the app built by `createApp` with an unreachable Kubernetes that counts
 * calls, one generated request at a time through `app.fetch`, violations grouped by kind.
 */
import fc from "fast-check";
import { KubeTransportError } from "../../src/kube/errors.ts";
import type { RestClient } from "../../src/kube/rest-client.ts";
import { type FuzzRequest, toRequest, violation } from "./arbitraries.ts";
import { testApp } from "../support/app.ts";

export type Problems = Map<string, { count: number; example: FuzzRequest; detail: string }>;

/** The service with an unreachable Kubernetes that counts how often it was asked. */
export function appWithUnreachableKube() {
  let calls = 0;
  const kube: RestClient = {
    performRequest: () => {
      calls++;
      return Promise.reject(new KubeTransportError("connect ECONNREFUSED 127.0.0.1:6443 (fuzz: Kubernetes is unreachable)"));
    },
  };
  const app = testApp(kube, { stamp: { source: "/fuzz", extensions: {} }, ready: () => Promise.resolve(false) });
  return { app, calls: () => calls };
}

/** Sends one generated request in process; returns the violation, if any. */
export async function checkInProcess(target: ReturnType<typeof appWithUnreachableKube>, request: FuzzRequest): Promise<string | undefined> {
  let built: Request;
  try {
    built = toRequest("http://provisioner.test/", request);
  } catch {
    return undefined; // fetch itself refuses to build it; no sender can send it
  }
  const before = target.calls();
  let response: Response;
  try {
    response = await target.app.fetch(built);
  } catch (error) {
    return `crash: ${(error as Error).message}`;
  }
  const body = await response.text();
  return violation(request, {
    status: response.status,
    headers: Object.fromEntries(response.headers),
    body,
    reachedKube: target.calls() > before,
  }, { kubeReachable: false });
}

/** Runs `runs` generated requests and groups what went wrong by kind, keeping the smallest example of each. */
export async function fuzzInProcess(arbitrary: fc.Arbitrary<FuzzRequest>, runs: number, seed: number) {
  const target = appWithUnreachableKube();
  const problems = new Map<string, { count: number; example: FuzzRequest; detail: string }>();
  for (const request of samples(arbitrary, runs, seed)) {
    const problem = await checkInProcess(target, request);
    if (!problem) continue;
    const kind = problem.replace(/:.*$/s, "");
    const seen = problems.get(kind);
    const size = JSON.stringify(request).length;
    if (!seen) problems.set(kind, { count: 1, example: request, detail: problem });
    else {
      seen.count++;
      if (size < JSON.stringify(seen.example).length) Object.assign(seen, { example: request, detail: problem });
    }
  }
  return { problems, kubeCalls: target.calls() };
}

export function report(problems: Map<string, { count: number; example: FuzzRequest; detail: string }>): string {
  return [...problems].map(([kind, { count, example, detail }]) =>
    `\n- ${kind} (${count}x), e.g. ${JSON.stringify({ method: example.method, headers: example.headers, body: example.body.slice(0, 300) })}\n  → ${detail.slice(0, 300)}`
  ).join("");
}


/** `runs` values of `arbitrary`, generated in batches (bodies can be large), reproducible from `seed`. */
export function* samples<T>(arbitrary: fc.Arbitrary<T>, runs: number, seed: number, batch = 500): Generator<T> {
  for (let offset = 0; offset < runs; offset += batch) {
    yield* fc.sample(arbitrary, { numRuns: Math.min(batch, runs - offset), seed: seed + offset });
  }
}
