/**
 * The two load generators, identical in shape: N workers pull the next event from one list until it is empty.
 *
 * - baseline: each worker calls `provisionClient(...)` in this process, with the service's own REST client
 *   and Node HTTP client (undici), so the Kubernetes API calls are exactly the service's. No CloudEvents, no
 *   HTTP server, no second process.
 * - ours: each worker posts a binary-mode CloudEvent (built with the cloudevents SDK's `HTTP.binary`) to the
 *   running service over a keep-alive connection, and checks the reply is the done event for that request.
 *   429/503 are retried after their Retry-After, as an event sender would; so is a broken connection.
 */
import { CloudEvent, HTTP } from "cloudevents";
import { Agent, request } from "undici";
import { type ClientRequest, clientPodName } from "../../src/provision/client-pod.ts";
import { provisionClient, type ProvisionerOptions } from "../../src/provision/provisioner.ts";
import { isTransient } from "../../src/kube/errors.ts";
import type { LoadCounts } from "../types.ts";

export const PENDING = "io.podgateway.client.pending";
export const DONE = "io.podgateway.client.scheduling.done";

/** One pending event, prepared before the clock starts (building it is the sender's cost, not the service's). */
export interface BenchEvent {
  request: ClientRequest;
  /** The pod name the provisioner derives from (source, id): what a correct reply names. */
  podName: string;
  headers: Record<string, string>;
  body: string;
}

/** Distinct pending events for one phase, alternating between the foo and bar gateways. */
export function makeEvents(source: string, prefix: string, count: number): BenchEvent[] {
  const events: BenchEvent[] = [];
  for (let i = 0; i < count; i++) {
    const request: ClientRequest = { source, id: `${prefix}-${i}`, gatewayName: i % 2 === 0 ? "foo" : "bar" };
    const message = HTTP.binary(new CloudEvent({ id: request.id, source, type: PENDING, data: { gateway_name: request.gatewayName } }));
    events.push({ request, podName: clientPodName(request), headers: message.headers as Record<string, string>, body: message.body as string });
  }
  return events;
}

/** A load run as measured: the recorded counts (bench/types.ts) and the per-event detail they come from. */
export interface LoadResult extends LoadCounts {
  concurrency: number;
  /** Per event, first attempt to final answer, in ms (index = event index; NaN if lost). */
  latencyMs: Float64Array;
  /** Per event: 1 if it was answered done for the right pod. */
  answered: Uint8Array;
  /** The most attempts any one event needed. */
  maxAttemptsUsed: number;
  /** Problems, a few examples. */
  errors: string[];
}

function newResult(events: number, concurrency: number): LoadResult {
  return { events, concurrency, done: 0, failed: 0, lost: 0, unsent: 0, retries: {}, wallMs: 0, latencyMs: new Float64Array(events).fill(Number.NaN), answered: new Uint8Array(events), maxAttemptsUsed: 0, errors: [] };
}

function note(result: LoadResult, message: string) {
  if (result.errors.length < 10) result.errors.push(message);
}

/** Runs work(0..count-1) on `concurrency` workers; stops handing out work at `deadline` (performance.now() time). */
async function pool(result: LoadResult, count: number, concurrency: number, deadline: number, work: (index: number) => Promise<void>): Promise<number> {
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < count) {
      if (performance.now() > deadline) {
        result.unsent = count - next;
        next = count;
        note(result, `time budget exhausted: ${result.unsent} events not sent`);
        return;
      }
      await work(next++);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return performance.now() - started;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Wait before retry `attempt` (1-based) when the answer named no Retry-After: 100 ms doubling up to 2 s, so
 * 30 attempts ride out ~50 s of API server trouble (a restart by someone's fault test), like a broker's
 * exponential backoff would; the same for both sides.
 */
export function backoff(attempt: number): number {
  return Math.min(2000, 100 * 2 ** (attempt - 1));
}

/** Baseline: provisionClient in a bare loop. A transient error (which the service would answer 503) is retried after 100 ms. */
export async function runBaseline(
  options: ProvisionerOptions,
  events: BenchEvent[],
  concurrency: number,
  budgetMs: number,
  maxAttempts = 30,
): Promise<LoadResult> {
  const result = newResult(events.length, concurrency);
  result.wallMs = await pool(result, events.length, concurrency, performance.now() + budgetMs, async (index) => {
    const event = events[index]!;
    const started = performance.now();
    for (let attempt = 1; ; attempt++) {
      try {
        const provisioned = await provisionClient(options, event.request);
        result.latencyMs[index] = performance.now() - started;
        result.maxAttemptsUsed = Math.max(result.maxAttemptsUsed, attempt);
        if (provisioned.ok && provisioned.name === event.podName) {
          result.done++;
          result.answered[index] = 1;
        }
        else {
          result.failed++;
          note(result, `${event.request.id}: ${provisioned.ok ? `pod ${provisioned.name}` : `${provisioned.reason}: ${provisioned.message}`}`);
        }
        return;
      } catch (error) {
        if (!isTransient(error) || attempt >= maxAttempts) {
          result.lost++;
          note(result, `${event.request.id}: ${(error as Error).message}`);
          return;
        }
        result.retries.transient = (result.retries.transient ?? 0) + 1;
        await sleep(backoff(attempt));
      }
    }
  });
  return result;
}

/** A keep-alive connection pool to the service, one connection per sender. */
export function senderAgent(connections: number): Agent {
  return new Agent({ connections, keepAliveTimeout: 60_000, keepAliveMaxTimeout: 600_000, headersTimeout: 120_000, bodyTimeout: 120_000 });
}

/**
 * Ours: binary-mode CloudEvents over HTTP to the service. An event is given up (lost) after `maxAttempts`
 * attempts or, when given, once `giveUpAfterMs` have passed since its first attempt (a broker's retry window).
 * `expect: "accepted"` is a peer's contract (Knative JobSink): 202 + Location is the answer, and like a broker
 * the sender retries 429 and every 5xx.
 */
export async function runOurs(
  url: string,
  agent: Agent,
  events: BenchEvent[],
  concurrency: number,
  budgetMs: number,
  maxAttempts = 30,
  giveUpAfterMs = Number.POSITIVE_INFINITY,
  expect: "done" | "accepted" = "done",
): Promise<LoadResult> {
  const result = newResult(events.length, concurrency);
  result.wallMs = await pool(result, events.length, concurrency, performance.now() + budgetMs, async (index) => {
    const event = events[index]!;
    const started = performance.now();
    for (let attempt = 1; ; attempt++) {
      let status = 0;
      let retryAfterMs = backoff(attempt);
      let problem = "";
      try {
        const response = await request(url, { method: "POST", headers: event.headers, body: event.body, dispatcher: agent });
        status = response.statusCode;
        const text = await response.body.text();
        if (expect === "accepted" && status === 202) {
          result.latencyMs[index] = performance.now() - started;
          result.maxAttemptsUsed = Math.max(result.maxAttemptsUsed, attempt);
          result.done++;
          result.answered[index] = 1;
          return;
        }
        if (expect === "done" && status === 200) {
          result.latencyMs[index] = performance.now() - started;
          result.maxAttemptsUsed = Math.max(result.maxAttemptsUsed, attempt);
          const type = response.headers["ce-type"];
          const subject = response.headers["ce-subject"];
          let podName: unknown;
          try {
            podName = (JSON.parse(text) as { pod_name?: unknown }).pod_name;
          } catch {
            podName = undefined;
          }
          if (type === DONE && subject === event.podName && podName === event.podName) {
            result.done++;
            result.answered[index] = 1;
          }
          else {
            result.failed++;
            note(result, `${event.request.id}: ${String(type)} ${String(subject)} ${text.slice(0, 300)}`);
          }
          return;
        }
        if (status === 429 || status === 503 || (expect === "accepted" && status >= 500)) {
          const seconds = Number(response.headers["retry-after"]);
          retryAfterMs = Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : backoff(attempt);
          problem = `HTTP ${status}: ${text.slice(0, 200)}`;
        } else {
          result.failed++;
          result.latencyMs[index] = performance.now() - started;
          note(result, `${event.request.id}: HTTP ${status}: ${text.slice(0, 300)}`);
          return;
        }
      } catch (error) {
        problem = `transport: ${(error as Error).message}`;
      }
      if (attempt >= maxAttempts || performance.now() - started > giveUpAfterMs) {
        result.lost++;
        result.maxAttemptsUsed = Math.max(result.maxAttemptsUsed, attempt);
        note(result, `${event.request.id}: gave up after ${attempt} attempts (${Math.round(performance.now() - started)} ms): ${problem}`);
        return;
      }
      const cause = status ? String(status) : "transport";
      result.retries[cause] = (result.retries[cause] ?? 0) + 1;
      // Spread the retries a little (+0-20 %) so they do not all come back in the same millisecond.
      await sleep(retryAfterMs * (1 + Math.random() * 0.2));
    }
  });
  return result;
}
