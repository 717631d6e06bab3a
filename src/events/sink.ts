import type { CloudEventV1 } from "cloudevents";
import { binaryMessage } from "./envelope.ts";
import { parseCeOverrides, type ResultStamp } from "./results.ts";
import { traceHeaders } from "./trace.ts";
import { backoffMs as backoff, sleep } from "../retry.ts";

/** Where result events go besides the HTTP reply: Knative's `K_SINK` (usually the broker). */
export interface EventSink {
  /**
   * Delivers `event`, or throws. `signal` stops it (no further attempt); `holds`, asked before each attempt,
   * stops it too when false (a leader's term that ran out while the process was paused: see kube/fence.ts).
   */
  send(event: CloudEventV1<unknown>, signal?: AbortSignal, holds?: () => boolean): Promise<void>;
}

/**
 * Where this process's events go, read once at start-up (Knative's SinkBinding contract): stamped with
 * `--event-source` and the extensions of `K_CE_OVERRIDES`, and sent to `K_SINK` when it is set.
 * @throws Error when K_CE_OVERRIDES is unusable, so a bad deployment stops before it listens.
 */
export function eventOutput(
  source: string,
  env: Record<string, string | undefined>,
  token?: () => Promise<string | undefined>,
): { stamp: ResultStamp; sink?: EventSink } {
  return { stamp: { source, extensions: parseCeOverrides(env.K_CE_OVERRIDES) }, sink: env.K_SINK ? httpSink(env.K_SINK, { token }) : undefined };
}

/** How httpSink sends: retries, and the OIDC token K_SINK wants (Knative's broker with authentication-oidc on). */
export interface SinkOptions {
  attempts?: number;
  backoffMs?: number;
  timeoutMs?: number;
  /** The current token, if any (read per send: Knative refreshes the mounted one before it expires). */
  token?: () => Promise<string | undefined>;
}

/**
 * Posts events in binary mode, retrying transport errors, 404, 409, 429 and 5xx with exponential backoff
 * (the retry rule of Knative's data plane). Throws when every attempt failed, so the caller can ask its own
 * sender to redeliver rather than lose the result.
 */
export function httpSink(url: string, options: SinkOptions = {}): EventSink {
  const attempts = options.attempts ?? 4;
  const backoffMs = options.backoffMs ?? 100;
  const timeoutMs = options.timeoutMs ?? 5_000;
  return {
    async send(event, signal, holds) {
      const message = binaryMessage(event);
      const token = await options.token?.();
      const headers = {
        ...message.headers,
        ...traceHeaders(event),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      };
      let lastProblem = "";
      for (let attempt = 0; attempt < attempts; attempt++) {
        if (attempt > 0) await sleep(backoff(attempt, backoffMs), signal);
        signal?.throwIfAborted();
        if (holds && !holds()) throw new DOMException("no longer allowed to send", "AbortError");
        try {
          const timeout = AbortSignal.timeout(timeoutMs);
          const response = await fetch(url, {
            method: "POST",
            headers,
            body: message.body,
            signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
          });
          await response.body?.cancel();
          if (response.ok) return;
          lastProblem = `HTTP ${response.status}`;
          if (![404, 409, 429].includes(response.status) && response.status < 500) break;
        } catch (error) {
          if (signal?.aborted) throw error;
          lastProblem = error instanceof Error ? error.message : String(error);
        }
      }
      throw new Error(`delivering ${event.type} to K_SINK failed: ${lastProblem}`);
    },
  };
}
