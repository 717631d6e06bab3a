/** CloudEvent types this service reads and writes. */
export const EventTypes = {
  /** In: a client pod is wanted behind a gateway. */
  pending: "io.podgateway.client.pending",
  /** Out: the client pod exists and its gateway routes it. */
  done: "io.podgateway.client.scheduling.done",
  /** Out: no client pod will exist for this request. */
  failed: "io.podgateway.client.scheduling.failed",
  /** Out (to K_SINK): the client pod runs, is Ready, and its gateway sidecar runs. */
  clientReady: "io.podgateway.client.ready",
  /** Out (to K_SINK): the client pod failed, was evicted, or was not Ready in time. */
  clientFailed: "io.podgateway.client.failed",
  /** Out (to K_SINK): the client pod is being deleted or is gone. */
  clientDeleted: "io.podgateway.client.deleted",
  /** In: the client is no longer wanted; its pod is deleted. */
  release: "io.podgateway.client.release",
  /** Out: the client pod of a release is deleted (or was already gone). */
  releaseDone: "io.podgateway.client.release.done",
  /** Out: the release cannot be carried out (invalid data, not a client pod). */
  releaseFailed: "io.podgateway.client.release.failed",
} as const;
