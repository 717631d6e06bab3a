import { KubeApiError, KubeTransportError, type KubeStatus } from "./errors.ts";
import type { Fetcher, KubeRequest, RestClient } from "./rest-client.ts";

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
export class HttpRestClient implements RestClient {
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
    const url = new URL(this.server + request.path);
    for (const [key, value] of Object.entries(request.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, value);
    }
    const headers: Record<string, string> = { accept: "application/json" };
    const token = await this.#token?.();
    if (token) headers.authorization = `Bearer ${token}`;
    if (request.body !== undefined) headers["content-type"] = request.contentType ?? "application/json";

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
