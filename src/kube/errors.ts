/** A `meta/v1 Status` answer from the API server. */
export interface KubeStatus {
  kind?: "Status";
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
  details?: { name?: string; kind?: string; retryAfterSeconds?: number; causes?: { field?: string; message?: string; reason?: string }[] };
}

/** The API server answered with a non-2xx status. */
export class KubeApiError extends Error {
  override name = "KubeApiError";
  readonly code: number;
  readonly reason: string;
  readonly status: KubeStatus;
  /** From the `Retry-After` header or the Status details, when the server gave one. */
  readonly retryAfterSeconds: number | undefined;

  constructor(code: number, status: KubeStatus, retryAfterSeconds?: number) {
    super(status.message || `Kubernetes API answered HTTP ${code}`);
    this.code = code;
    this.reason = status.reason || "Unknown";
    this.status = status;
    this.retryAfterSeconds = retryAfterSeconds ?? status.details?.retryAfterSeconds;
  }
}

/** The API server could not be reached or did not answer in time. Always worth a retry. */
export class KubeTransportError extends Error {
  override name = "KubeTransportError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Whether the API server answered one of these HTTP status codes (e.g. 409 or 422: a lost race). */
export function isStatus(error: unknown, ...codes: number[]): error is KubeApiError {
  return error instanceof KubeApiError && codes.includes(error.code);
}

/**
 * Whether the same call may succeed later: connection trouble, timeouts, 429 and 5xx.
 * Everything else (validation, forbidden, not found, conflicts) will fail the same way again.
 */
export function isTransient(error: unknown): boolean {
  if (error instanceof KubeTransportError) return true;
  if (error instanceof KubeApiError) return error.code === 429 || error.code >= 500;
  return false;
}
