/**
 * The whole contract between this service and Kubernetes: one method that performs one REST call.
 *
 * Like cloudydeno's kubernetes-client, transports (kubeconfig, in-cluster) are interchangeable
 * implementations of {@link RestClient}; everything above it (pods, token reviews) is plain functions.
 */
export interface RestClient {
  performRequest<T = unknown>(request: KubeRequest): Promise<T>;
}

/**
 * A {@link RestClient} that can also hold a streaming GET open, as watches need (`?watch=1`). Separate from
 * {@link RestClient} so plain request/response fakes and transports need not implement it.
 */
export interface StreamingRestClient extends RestClient {
  /**
   * Performs a GET whose answer is a stream of JSON documents, one a line (a watch), and yields them parsed.
   * Resolves once the response headers arrived (within the client's timeout); the stream then lasts until
   * the server ends it or `request.signal` aborts it, and errors if the connection breaks.
   * @throws KubeApiError for a non-2xx answer, KubeTransportError when the server cannot be reached.
   */
  performStream<T = unknown>(request: KubeRequest & { method: "GET" }): Promise<ReadableStream<T>>;
}

/** One Kubernetes API call. `path` starts with `/api` or `/apis` (or a non-resource path such as `/readyz`). */
export interface KubeRequest {
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  path: string;
  query?: Record<string, string | undefined>;
  /** Serialised as JSON. */
  body?: unknown;
  /** Defaults to `application/json`; PATCH needs e.g. `application/json-patch+json`. */
  contentType?: string;
  /** Parse the answer as JSON (default) or return it as text. */
  expect?: "json" | "text";
  signal?: AbortSignal;
}

/** A `fetch` bound to one cluster's TLS settings; runtime adapters build it. */
export type Fetcher = (url: string, init: RequestInit) => Promise<Response>;

/** TLS material for an API server connection, as PEM text. */
export interface TlsOptions {
  ca?: string;
  cert?: string;
  key?: string;
  insecureSkipVerify?: boolean;
}

/** Builds a {@link Fetcher} for the given TLS material; one per runtime (see `src/adapter/`). */
export type FetcherFactory = (tls: TlsOptions) => Fetcher;
