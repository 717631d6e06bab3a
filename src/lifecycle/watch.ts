/**
 * One list-then-watch of pods matching a label selector, kept alive: it resumes from the last resourceVersion
 * it saw (bookmarks included) when the stream ends or breaks, and lists again when the server says 410 Gone.
 */
import type { Pod } from "kubernetes-types/core/v1";
import { isStatus, KubeApiError, type KubeStatus } from "../kube/errors.ts";
import { listPods, podsPath } from "../kube/pods.ts";
import type { StreamingRestClient } from "../kube/rest-client.ts";
import type { Logger } from "../observability/log.ts";
import { backoffMs, sleep } from "../retry.ts";

/** One line of a watch stream. */
export type WatchEvent =
  | { type: "ADDED" | "MODIFIED" | "DELETED"; object: Pod }
  | { type: "BOOKMARK"; object: { metadata?: { resourceVersion?: string } } }
  | { type: "ERROR"; object: KubeStatus };

/** What the watch reports; called one at a time, in order. */
export interface PodWatchHandlers<T = Pod> {
  /** Every matching pod that exists now (what `keep` keeps of each): after start, and again after each 410 Gone. */
  onList(pods: T[]): void | Promise<void>;
  onChange(type: "ADDED" | "MODIFIED" | "DELETED", pod: Pod): void | Promise<void>;
}

export interface PodWatchOptions<T = Pod> {
  kube: StreamingRestClient;
  namespace: string;
  labelSelector: string;
  log: Logger;
  /** What the list keeps of each pod (see `listPods`); the watch's changes come whole. */
  keep?: (pod: Pod) => T;
  /** Asked of the server per watch request; it ends the stream then and we resume. */
  watchSeconds?: number;
  /** Backoff after a failure: from `minBackoffMs`, doubling up to `maxBackoffMs`. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

/**
 * Lists and watches until `signal` aborts; never throws otherwise (failures are logged and retried).
 * @returns when `signal` aborted.
 */
export async function watchPods<T = Pod>(options: PodWatchOptions<T>, handlers: PodWatchHandlers<T>, signal: AbortSignal): Promise<void> {
  const { kube, namespace, labelSelector, log } = options;
  const path = podsPath(namespace);
  const watchSeconds = options.watchSeconds ?? 300;
  const minBackoffMs = options.minBackoffMs ?? 250;
  const maxBackoffMs = options.maxBackoffMs ?? 10_000;
  let resourceVersion: string | undefined;
  let failures = 0;

  while (!signal.aborted) {
    try {
      if (resourceVersion === undefined) {
        const list = await listPods(kube, namespace, { labelSelector, signal, keep: options.keep });
        await handlers.onList(list.items);
        resourceVersion = list.metadata?.resourceVersion ?? "";
      }
      // Our own deadline a little past the server's: a connection that silently died is noticed too.
      const deadline = AbortSignal.timeout((watchSeconds + 30) * 1000);
      const stream = await kube.performStream<WatchEvent>({
        method: "GET",
        path,
        query: { watch: "1", resourceVersion, allowWatchBookmarks: "true", labelSelector, timeoutSeconds: String(watchSeconds) },
        signal: AbortSignal.any([signal, deadline]),
      });
      const reader = stream.getReader();
      const openedAt = Date.now();
      let events = 0;
      try {
        for (;;) {
          const { value: event, done } = await reader.read();
          if (done) break;
          if (event.type === "ERROR") {
            if (event.object.code === 410) {
              // Our resourceVersion was compacted away: only a fresh list can tell what we missed.
              resourceVersion = undefined;
              break;
            }
            throw new KubeApiError(event.object.code ?? 500, event.object);
          }
          const version = event.object.metadata?.resourceVersion;
          if (event.type !== "BOOKMARK") await handlers.onChange(event.type, event.object);
          if (version) resourceVersion = version;
          failures = 0;
          events++;
        }
      } finally {
        reader.releaseLock();
        stream.cancel().catch(() => {});
      }
      // A server that keeps closing empty watches at once must not make us spin.
      if (events === 0 && Date.now() - openedAt < 1_000) await sleep(minBackoffMs, signal);
    } catch (error) {
      if (signal.aborted) break;
      if (isStatus(error, 410)) {
        resourceVersion = undefined;
        continue;
      }
      failures++;
      const delay = backoffMs(failures, minBackoffMs, maxBackoffMs);
      log({ msg: "pod watch interrupted; resuming", error: (error as Error).message, resourceVersion, retryInMs: delay });
      await sleep(delay, signal);
    }
  }
}
