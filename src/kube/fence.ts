/**
 * A fenced client: every call carries the fence's signal, and none starts once the fence no longer holds. The
 * controller's leader fences its lifecycle work with its term (src/controller/leader.ts): after leadership is
 * lost nothing more is written, even by work that was already under way.
 */
import type { KubeRequest, StreamingRestClient } from "./rest-client.ts";

/** What may still write: a signal that aborts when it may not, and a check asked just before each write. */
export interface Fence {
  readonly signal: AbortSignal;
  /** Whether writing is still allowed; false also aborts {@link Fence.signal}. */
  holds(): boolean;
}

/** A fence that holds until `signal` aborts. */
export const signalFence = (signal: AbortSignal): Fence => ({ signal, holds: () => !signal.aborted });

/** `kube`, with every request carrying `fence.signal` and refused (an AbortError, no call) once the fence is down. */
export function fenced(kube: StreamingRestClient, fence: Fence): StreamingRestClient {
  const guard = <R extends KubeRequest>(request: R): R => {
    fence.holds();
    fence.signal.throwIfAborted();
    return { ...request, signal: request.signal ? AbortSignal.any([request.signal, fence.signal]) : fence.signal };
  };
  return {
    performRequest: async (request) => await kube.performRequest(guard(request)),
    performStream: async (request) => await kube.performStream(guard(request)),
  };
}
