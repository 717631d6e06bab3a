/**
 * A CloudEvents sender that delivers the way Knative's data plane does (broker → trigger subscriber), for fault
 * tests: each event is POSTed in binary mode; 404, 408, 409, 429, 5xx, connection errors and timeouts are retried
 * with exponential backoff (`backoffDelay * 2^n`, Knative's `backoffPolicy: exponential`), and a `Retry-After` on
 * 429/503 stretches the wait up to `retryAfterMax` (Knative's `delivery-retryafter` feature). Every other answer is
 * final. Attempts and total time are bounded, so a load always ends.
 *
 * Also here: a bounded load driver. The pod watcher the fault tests check against is test/support/pod-watch.ts.
 *
 * The real broker is tested in test/e2e/knative-*.test.ts (API server outage, 429 bursts, OIDC); this imitation
 * stays for the fault tests that need what a broker does not give: every attempt recorded, a fresh connection
 * per attempt (SIGTERM), fast retries to keep large loads short.
 */
import { request as httpRequest } from "node:http";
import { CloudEvent, type CloudEventV1, HTTP } from "cloudevents";
import { replyEvent } from "./received.ts";

export const PENDING = "io.podgateway.client.pending";
export const DONE = "io.podgateway.client.scheduling.done";
export const FAILED = "io.podgateway.client.scheduling.failed";

/** Knative's `delivery` spec, in milliseconds. */
export interface DeliveryPolicy {
  /** Retries after the first attempt (Knative `retry`). */
  retry: number;
  /** Knative `backoffDelay`; the n-th retry waits `backoffDelayMs * 2^n` (exponential) or `* (n+1)` (linear). */
  backoffDelayMs: number;
  backoffPolicy: "exponential" | "linear";
  /** Knative `retryAfterMax`: the longest a `Retry-After` may stretch a wait; 0 ignores `Retry-After`. */
  retryAfterMaxMs: number;
  /** Knative `timeout`: one attempt's deadline. */
  timeoutMs: number;
  /** Not Knative's: the whole delivery gives up after this long, so a test always ends. */
  deadlineMs: number;
  /**
   * "fetch": the runtime's fetch with keep-alive (what a dispatcher does);
   * "fresh": a new TCP connection per attempt (`Connection: close`), so a refused connection is told apart from a
   * reset one exactly (SIGTERM tests).
   */
  transport: "fetch" | "fresh";
}

export const KNATIVE_POLICY: DeliveryPolicy = {
  retry: 12,
  backoffDelayMs: 50,
  backoffPolicy: "exponential",
  retryAfterMaxMs: 5_000,
  timeoutMs: 30_000,
  deadlineMs: 180_000,
  transport: "fetch",
};

/** One attempt, as the sender saw it. */
export interface Attempt {
  at: number;
  ms: number;
  status?: number;
  /** "refused": no connection was made; "reset": the connection broke before an answer; "timeout"; "other". */
  error?: "refused" | "reset" | "timeout" | "other";
  detail?: string;
}

export interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The result event, when the answer carries one (binary mode). */
  event?: CloudEventV1<Record<string, string>>;
}

export interface Delivery {
  id: string;
  attempts: Attempt[];
  /** The final answer: a non-retryable one, or the last retryable one when attempts or time ran out. */
  answer?: Answer;
  /** True when the sender stopped with a retryable outcome (Knative would dead-letter it). */
  gaveUp: boolean;
  ms: number;
}

/** The statuses Knative redelivers. */
export function isRetryableStatus(status: number): boolean {
  return status === 404 || status === 408 || status === 409 || status === 429 || status >= 500;
}

export interface WireMessage {
  id: string;
  headers: Record<string, string>;
  body: string;
}

/** A pending event in binary mode, as a broker would deliver it. */
export function pendingMessage(id: string, gateway: unknown, source = "/e2e/fault"): WireMessage {
  const message = HTTP.binary(new CloudEvent({ id, source, type: PENDING, data: { gateway_name: gateway } }));
  return { id, headers: message.headers as Record<string, string>, body: message.body as string };
}

/**
 * One POST: transport problems become `error`. Throws only when the answer's event breaks its schema (a broken
 * contract, never a reason to redeliver).
 */
export async function attempt(url: string, message: WireMessage, policy: Pick<DeliveryPolicy, "timeoutMs" | "transport">): Promise<{ attempt: Attempt; answer?: Answer }> {
  const at = Date.now();
  let answer: Answer;
  try {
    answer = policy.transport === "fresh"
      ? await postFresh(url, message, policy.timeoutMs)
      : await postFetch(url, message, policy.timeoutMs);
  } catch (error) {
    return { attempt: { at, ms: Date.now() - at, error: classify(error), detail: describe(error) } };
  }
  answer.event = replyEvent(answer.headers, answer.body);
  return { attempt: { at, ms: Date.now() - at, status: answer.status }, answer };
}

/**
 * Delivers one event until a final answer, Knative-style. `target` may change between attempts (a restarted
 * service on a new port, as a Kubernetes Service would route to a new pod).
 */
export async function deliver(target: string | (() => string), message: WireMessage, policy: DeliveryPolicy = KNATIVE_POLICY): Promise<Delivery> {
  const started = Date.now();
  const attempts: Attempt[] = [];
  let answer: Answer | undefined;
  for (let n = 0; n <= policy.retry; n++) {
    const url = typeof target === "string" ? target : target();
    const result = await attempt(url, message, policy);
    attempts.push(result.attempt);
    answer = result.answer;
    if (answer && !isRetryableStatus(answer.status)) {
      return { id: message.id, attempts, answer, gaveUp: false, ms: Date.now() - started };
    }
    if (n === policy.retry) break;
    let wait = policy.backoffPolicy === "exponential" ? policy.backoffDelayMs * 2 ** n : policy.backoffDelayMs * (n + 1);
    const retryAfter = Number(answer?.headers["retry-after"]);
    if (policy.retryAfterMaxMs > 0 && (answer?.status === 429 || answer?.status === 503) && retryAfter > 0) {
      wait = Math.max(wait, Math.min(retryAfter * 1000, policy.retryAfterMaxMs));
    }
    if (Date.now() + wait - started > policy.deadlineMs) break;
    await sleep(wait);
  }
  return { id: message.id, attempts, answer, gaveUp: true, ms: Date.now() - started };
}

async function postFetch(url: string, message: WireMessage, timeoutMs: number): Promise<Answer> {
  const response = await fetch(url, { method: "POST", headers: message.headers, body: message.body, signal: AbortSignal.timeout(timeoutMs) });
  return { status: response.status, headers: Object.fromEntries(response.headers), body: await response.text() };
}

/** A POST on a connection of its own, closed after the answer. */
function postFresh(url: string, message: WireMessage, timeoutMs: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const body = Buffer.from(message.body);
    const req = httpRequest(url, {
      method: "POST",
      agent: false,
      headers: { ...message.headers, connection: "close", "content-length": String(body.length) },
      timeout: timeoutMs,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => {
        const headers: Record<string, string> = {};
        for (const [key, value] of Object.entries(res.headers)) if (typeof value === "string") headers[key] = value;
        resolve({ status: res.statusCode ?? 0, headers, body: Buffer.concat(chunks).toString("utf8") });
      });
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(Object.assign(new Error("timed out"), { code: "ETIMEDOUT" })));
    req.on("error", reject);
    req.end(body);
  });
}

function chain(error: unknown): string {
  const parts: string[] = [];
  for (let current = error as { message?: string; code?: string; cause?: unknown } | undefined, depth = 0; current && depth < 5; depth++) {
    parts.push(`${current.code ?? ""} ${current.message ?? String(current)}`);
    current = current.cause as typeof current;
  }
  return parts.join(" <- ");
}

function classify(error: unknown): Attempt["error"] {
  const text = chain(error);
  if (/ECONNREFUSED|refused/i.test(text)) return "refused";
  if (/ETIMEDOUT|timed? ?out|TimeoutError|aborted due to timeout/i.test(text)) return "timeout";
  if (/ECONNRESET|EPIPE|reset|hang up|other side closed|closed|connection error|broken pipe|UND_ERR_SOCKET|incomplete/i.test(text)) return "reset";
  return "other";
}

function describe(error: unknown): string {
  return chain(error).slice(0, 300);
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------- load

export interface LoadOptions {
  concurrency: number;
  /** The load stops taking new items after this long (items not started are reported as not sent). */
  deadlineMs: number;
  /** Called after each item finishes, e.g. to inject a fault at some point of the load. */
  onProgress?: (finished: number) => void;
}

/** Runs `work` over `items` with bounded concurrency and time; returns results in item order (undefined: not run). */
export async function runLoad<T, R>(items: T[], options: LoadOptions, work: (item: T, index: number) => Promise<R>): Promise<(R | undefined)[]> {
  const results: (R | undefined)[] = new Array(items.length).fill(undefined);
  const deadline = Date.now() + options.deadlineMs;
  let next = 0;
  let finished = 0;
  const worker = async () => {
    while (next < items.length && Date.now() < deadline) {
      const index = next++;
      results[index] = await work(items[index]!, index);
      options.onProgress?.(++finished);
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency, items.length) }, worker));
  return results;
}

/** Counts of attempts and answers over many deliveries, for test diagnostics and the figures of docs/reliability.md. */
export function summarize(deliveries: (Delivery | undefined)[]): Record<string, number> {
  const summary: Record<string, number> = { events: deliveries.length, attempts: 0, retried_events: 0, gave_up: 0, not_sent: 0 };
  for (const delivery of deliveries) {
    if (!delivery) {
      summary.not_sent!++;
      continue;
    }
    summary.attempts! += delivery.attempts.length;
    if (delivery.attempts.length > 1) summary.retried_events!++;
    if (delivery.gaveUp) summary.gave_up!++;
    for (const a of delivery.attempts) {
      const key = a.status ? `http_${a.status}` : `error_${a.error}`;
      summary[key] = (summary[key] ?? 0) + 1;
    }
    const final = delivery.answer?.event?.type ?? (delivery.answer ? `status_${delivery.answer.status}` : "no_answer");
    summary[`final_${final.replace(/^io\.podgateway\.client\.scheduling\./, "")}`] = (summary[`final_${final.replace(/^io\.podgateway\.client\.scheduling\./, "")}`] ?? 0) + 1;
  }
  return summary;
}
