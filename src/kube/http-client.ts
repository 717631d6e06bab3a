import { KubeApiError, KubeTransportError, type KubeStatus } from "./errors.ts";
import type { Fetcher, KubeRequest, StreamingRestClient } from "./rest-client.ts";

/** How an {@link HttpRestClient} reaches and authenticates to one API server. */
export interface HttpRestClientOptions {
  /** e.g. `https://127.0.0.1:6443`, no trailing slash needed. */
  server: string;
  fetcher: Fetcher;
  /** Returns the current bearer token, if any; called per request so rotated tokens are picked up. */
  token?: () => string | undefined | Promise<string | undefined>;
  /** Per-request deadline. No client-side rate limit exists on purpose: the API server has its own (APF). */
  timeoutMs?: number;
}

/** {@link RestClient} over HTTPS with any `fetch`. Used by both the kubeconfig and the in-cluster transport. */
export class HttpRestClient implements StreamingRestClient {
  readonly server: string;
  readonly #fetcher: Fetcher;
  readonly #token: HttpRestClientOptions["token"];
  readonly #timeoutMs: number;

  constructor(options: HttpRestClientOptions) {
    this.server = options.server.replace(/\/+$/, "");
    this.#fetcher = options.fetcher;
    this.#token = options.token;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  async performRequest<T = unknown>(request: KubeRequest): Promise<T> {
    const { url, headers } = await this.#prepare(request);

    const timeout = AbortSignal.timeout(this.#timeoutMs);
    const signal = request.signal ? AbortSignal.any([request.signal, timeout]) : timeout;
    let response: Response;
    try {
      response = await this.#fetcher(url.href, {
        method: request.method,
        headers,
        body: request.body === undefined ? undefined : JSON.stringify(request.body),
        signal,
      });
    } catch (cause) {
      const what = timeout.aborted ? `timed out after ${this.#timeoutMs} ms` : describe(cause);
      throw new KubeTransportError(`${request.method} ${request.path}: ${what}`, { cause });
    }

    let text: string;
    try {
      text = await response.text();
    } catch (cause) {
      throw new KubeTransportError(`${request.method} ${request.path}: reading the answer failed: ${describe(cause)}`, { cause });
    }
    if (!response.ok) {
      throw new KubeApiError(response.status, parseStatus(text, response.status), retryAfter(response.headers));
    }
    if (request.expect === "text") return text as T;
    return (text ? JSON.parse(text) : undefined) as T;
  }

  async performStream<T = unknown>(request: KubeRequest & { method: "GET" }): Promise<ReadableStream<T>> {
    const { url, headers } = await this.#prepare(request);
    // The deadline covers only the wait for the response headers: a watch then stays open for minutes.
    const connect = new AbortController();
    const timer = setTimeout(() => connect.abort(new Error(`timed out after ${this.#timeoutMs} ms`)), this.#timeoutMs);
    const signal = request.signal ? AbortSignal.any([request.signal, connect.signal]) : connect.signal;
    let response: Response;
    try {
      response = await this.#fetcher(url.href, { method: "GET", headers, signal });
    } catch (cause) {
      const what = connect.signal.aborted ? `timed out after ${this.#timeoutMs} ms` : describe(cause);
      throw new KubeTransportError(`GET ${request.path}: ${what}`, { cause });
    } finally {
      clearTimeout(timer);
    }
    if (!response.ok || !response.body) {
      const text = await response.text().catch(() => "");
      throw new KubeApiError(response.status, parseStatus(text, response.status), retryAfter(response.headers));
    }
    return response.body.pipeThrough(new TextDecoderStream()).pipeThrough(jsonLines<T>());
  }

  async #prepare(request: KubeRequest): Promise<{ url: URL; headers: Record<string, string> }> {
    const url = new URL(this.server + request.path);
    for (const [key, value] of Object.entries(request.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, value);
    }
    const headers: Record<string, string> = { accept: "application/json" };
    const token = await this.#token?.();
    if (token) headers.authorization = `Bearer ${token}`;
    if (request.body !== undefined) headers["content-type"] = request.contentType ?? "application/json";
    return { url, headers };
  }
}

/** Splits text into lines and parses each non-empty one as JSON; a watch sends one event per line. */
export function jsonLines<T>(): TransformStream<string, T> {
  let buffered = "";
  return new TransformStream<string, T>({
    transform(chunk, controller) {
      buffered += chunk;
      let newline: number;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (line) controller.enqueue(JSON.parse(line) as T);
      }
    },
    flush(controller) {
      const line = buffered.trim();
      if (line) controller.enqueue(JSON.parse(line) as T);
    },
  });
}

function parseStatus(text: string, code: number): KubeStatus {
  try {
    const parsed = JSON.parse(text);
    if (parsed && typeof parsed === "object" && parsed.kind === "Status") return parsed as KubeStatus;
  } catch {
    // Not JSON: proxies and overloaded servers answer in plain text.
  }
  return { message: text.trim().slice(0, 300) || `HTTP ${code}`, code };
}

function retryAfter(headers: Headers): number | undefined {
  const value = Number(headers.get("retry-after"));
  return Number.isFinite(value) && value > 0 ? value : undefined;
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : "";
  return `${error.message}${cause}`;
}
