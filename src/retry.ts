/** Waiting between attempts, the one way the service does it (K_SINK delivery, the pod watch, shutdown). */

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
