/**
 * A pod watcher for the fault tests: it records every state a namespace's pods go through, to prove that no
 * unrouted client pod is ever scheduled or ungated and no request ever gets a second pod.
 */
import { loadKubeconfig } from "../../src/kube/kubeconfig.ts";
import { ANNOTATION_REQUEST_ID, ANNOTATION_REQUEST_SOURCE, ROUTING_GATE } from "../../src/provision/client-pod.ts";
import { clusterKubeconfig } from "./cluster.ts";
import { fetcherFactory } from "./runtime.ts";
import type { Pod } from "kubernetes-types/core/v1";
import { sleep } from "../../src/retry.ts";

/** What the watcher knows about one pod object (one uid). */
export interface SeenPod {
  uid: string;
  name: string;
  request: string;
  routed: boolean;
  everScheduled: boolean;
  everUngated: boolean;
  deleted: boolean;
}

export interface PodWatch {
  /** Every pod object ever seen in the namespace, by uid. */
  seen: Map<string, SeenPod>;
  /** Unrouted pods (no gateway-init) seen with `spec.nodeName` or without the routing gate: must stay empty. */
  violations: string[];
  /** Requests (source + id) that had more than one pod object over the watch: must stay empty. */
  duplicates: () => string[];
  /** Watch (re)connections and relists, e.g. across an API server restart. */
  reconnects: number;
  /** Resolves once the initial list is in. */
  ready: Promise<void>;
  stop: () => Promise<void>;
}

/**
 * Watches every pod of `namespace` (list, then watch from its resourceVersion, re-watching after breaks and
 * relisting after 410 Gone) with the admin kubeconfig. Every ADDED/MODIFIED state is checked: an unrouted pod
 * that is ever scheduled or ungated is a violation of the fail-closed promise.
 */
export function watchPods(namespace: string, routingInitContainer = "gateway-init"): PodWatch {
  const seen = new Map<string, SeenPod>();
  const violations: string[] = [];
  const abort = new AbortController();
  let reconnects = 0;
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  let markReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => (markReady = resolve));

  const observe = (pod: Pod, deleted = false) => {
    const uid = pod.metadata?.uid ?? "?";
    const routed = pod.spec?.initContainers?.some((container) => container.name === routingInitContainer) ?? false;
    const scheduled = Boolean(pod.spec?.nodeName);
    const gated = pod.spec?.schedulingGates?.some((gate) => gate.name === ROUTING_GATE) ?? false;
    const annotations = pod.metadata?.annotations ?? {};
    const entry = seen.get(uid) ?? {
      uid,
      name: pod.metadata?.name ?? "?",
      request: `${annotations[ANNOTATION_REQUEST_SOURCE] ?? "?"}\0${annotations[ANNOTATION_REQUEST_ID] ?? "?"}`,
      routed,
      everScheduled: false,
      everUngated: false,
      deleted: false,
    };
    entry.routed ||= routed;
    entry.everScheduled ||= scheduled;
    entry.everUngated ||= !gated;
    entry.deleted ||= deleted;
    seen.set(uid, entry);
    if (!routed && !deleted && (scheduled || !gated)) {
      violations.push(`${pod.metadata?.name} (uid ${uid}) has no ${routingInitContainer} but ${scheduled ? `is on node ${pod.spec?.nodeName}` : "lost its routing gate"}`);
    }
  };

  const run = async () => {
    const config = await loadKubeconfig(clusterKubeconfig());
    const fetcher = (await fetcherFactory())(config.tls);
    const headers: Record<string, string> = { accept: "application/json", ...(config.token ? { authorization: `Bearer ${config.token}` } : {}) };
    const base = `${config.server}/api/v1/namespaces/${namespace}/pods`;
    let resourceVersion: string | undefined;
    while (!abort.signal.aborted) {
      try {
        if (!resourceVersion) {
          const response = await fetcher(base, { method: "GET", headers, signal: abort.signal });
          if (!response.ok) throw new Error(`list: HTTP ${response.status}`);
          const list = await response.json() as { metadata: { resourceVersion: string }; items: Pod[] };
          for (const pod of list.items) observe(pod);
          resourceVersion = list.metadata.resourceVersion;
          markReady();
        }
        const url = `${base}?watch=1&allowWatchBookmarks=true&timeoutSeconds=60&resourceVersion=${resourceVersion}`;
        const response = await fetcher(url, { method: "GET", headers, signal: abort.signal });
        if (!response.ok || !response.body) throw new Error(`watch: HTTP ${response.status}`);
        const current = response.body.getReader();
        reader = current;
        const decoder = new TextDecoder();
        let buffered = "";
        for (;;) {
          const { value, done } = await current.read();
          if (done) break;
          buffered += decoder.decode(value, { stream: true });
          let newline: number;
          while ((newline = buffered.indexOf("\n")) >= 0) {
            const line = buffered.slice(0, newline).trim();
            buffered = buffered.slice(newline + 1);
            if (!line) continue;
            const event = JSON.parse(line) as { type: string; object: Pod & { code?: number } };
            if (event.type === "ERROR") {
              if (event.object.code === 410) resourceVersion = undefined; // too old: relist
              throw new Error(`watch error ${event.object.code}`);
            }
            if (event.object.metadata?.resourceVersion) resourceVersion = event.object.metadata.resourceVersion;
            if (event.type === "ADDED" || event.type === "MODIFIED") observe(event.object);
            if (event.type === "DELETED") observe(event.object, true);
          }
        }
      } catch {
        if (abort.signal.aborted) break;
      }
      if (abort.signal.aborted) break;
      reconnects++;
      await sleep(200);
    }
  };
  const running = run().catch(() => {});

  return {
    seen,
    violations,
    duplicates: () => {
      const byRequest = new Map<string, number>();
      for (const pod of seen.values()) byRequest.set(pod.request, (byRequest.get(pod.request) ?? 0) + 1);
      return [...byRequest].filter(([, count]) => count > 1).map(([request, count]) => `${request.replace("\0", " ")}: ${count} pods`);
    },
    get reconnects() {
      return reconnects;
    },
    ready,
    stop: async () => {
      abort.abort();
      // Some fetch implementations do not end a streaming body on abort: cancel it, and wait only briefly.
      await reader?.cancel().catch(() => {});
      await Promise.race([running, sleep(2_000)]);
    },
  };
}
