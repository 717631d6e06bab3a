/** Waiting between attempts, the one way the service does it (K_SINK delivery, the pod watch, shutdown), and retrying. */
import { KubeTransportError } from "./kube/errors.ts";

/** Resolves after `ms`, or at once when `signal` aborts (callers check `signal.aborted` afterwards). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** Exponential backoff: `baseMs` before the first retry (`retry` = 1), doubling, at most `maxMs`. */
export function backoffMs(retry: number, baseMs: number, maxMs = Infinity): number {
  return Math.min(maxMs, baseMs * 2 ** (retry - 1));
}

/** What an attempt of {@link retryOnConflict} returns when it lost a race (409, 422, 404): read again, try again. */
export const AGAIN: unique symbol = Symbol("again");

/**
 * The optimistic-concurrency loop: runs `attempt` (round 0, 1, …) until it returns a value, at most `times`
 * rounds; an attempt that lost a race to another writer returns {@link AGAIN}. What it throws ends the loop.
 * @throws KubeTransportError(`exhausted`) when every round lost its race: the sender retries later.
 */
export async function retryOnConflict<T>(times: number, attempt: (round: number) => Promise<T | typeof AGAIN>, exhausted: string): Promise<T> {
  for (let round = 0; round < times; round++) {
    const result = await attempt(round);
    if (result !== AGAIN) return result;
  }
  throw new KubeTransportError(exhausted);
}
