/** CloudEvent types this service reads and writes. */
export const EventTypes = {
  /** In: a client pod is wanted behind a gateway. */
  pending: "io.podgateway.client.pending",
  /** Out: the client pod exists and its gateway routes it. */
  done: "io.podgateway.client.scheduling.done",
  /** Out: no client pod will exist for this request. */
  failed: "io.podgateway.client.scheduling.failed",
} as const;
