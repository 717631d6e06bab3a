/**
 * An in-memory stand-in for the few API server endpoints the lifecycle uses (pods: list, watch, get, create,
 * patch, delete; leases: list, get, create, update, delete), with the semantics that matter: resourceVersions,
 * uid and resourceVersion preconditions, finalizers holding a deleted pod, 409/404/410 answers.
 * Every call yields to the event loop first, so concurrent callers interleave as they would over HTTP.
 */
import type { Lease } from "kubernetes-types/coordination/v1";
import type { Pod, PodStatus } from "kubernetes-types/core/v1";
import { KubeApiError } from "../../src/kube/errors.ts";
import { createLifecycle } from "../../src/lifecycle/lifecycle.ts";
import type { KubeRequest, StreamingRestClient } from "../../src/kube/rest-client.ts";

type Obj = { metadata?: Record<string, any>; [key: string]: any };
type WatchLine = { type: string; object: unknown };

const fail = (code: number, reason: string, message = reason): never => {
  throw new KubeApiError(code, { kind: "Status", code, reason, message });
};
const clone = <T>(value: T): T => structuredClone(value);

export class FakeKube implements StreamingRestClient {
  readonly pods = new Map<string, Pod>();
  readonly leases = new Map<string, Lease>();
  /** Every call, as `METHOD path` (a list's further pages marked `(next page)`). */
  readonly calls: string[] = [];
  /** Calls still to fail with this error before the fake answers again. */
  failures: Error[] = [];
  #rv = 1;
  #uid = 0;
  #history: { rv: number; line: WatchLine }[] = [];
  /** Watches asked for a resourceVersion below this get 410 Gone. */
  compactedAt = 0;

  /** The latest resourceVersion handed out. */
  get resourceVersion(): number {
    return this.#rv;
  }
  #watchers = new Set<{ selector: string; controller: ReadableStreamDefaultController<WatchLine> }>();

  async performRequest<T = unknown>(request: KubeRequest): Promise<T> {
    await new Promise((resolve) => setTimeout(resolve, 0));
    this.calls.push(`${request.method} ${request.path}${request.query?.continue ? " (next page)" : ""}`);
    const injected = this.failures.shift();
    if (injected) throw injected;
    const match = /^\/(?:api\/v1|apis\/coordination\.k8s\.io\/v1)\/namespaces\/([^/]+)\/(pods|leases)(?:\/([^/]+))?$/.exec(request.path);
    if (!match) return fail(404, "NotFound", `no route ${request.path}`);
    const [, namespace, kind, name] = match as unknown as [string, string, "pods" | "leases", string | undefined];
    const store = (kind === "pods" ? this.pods : this.leases) as Map<string, Obj>;
    const selector = request.query?.labelSelector ?? "";

    if (request.method === "GET" && !name) {
      let items = [...store.values()].filter((item) => matches(item, selector)).map(clone)
        .sort((x, y) => String(x.metadata?.name).localeCompare(String(y.metadata?.name)));
      // Paging as the API server does it: `limit`, and an opaque `continue` token (here: after which name).
      const after = request.query?.continue;
      if (after !== undefined) {
        if (!after.startsWith("after:")) return fail(400, "BadRequest", "invalid continue token");
        items = items.filter((item) => String(item.metadata?.name) > after.slice(6));
      }
      const limit = Number(request.query?.limit ?? 0);
      const more = limit > 0 && items.length > limit;
      if (more) items = items.slice(0, limit);
      const next = more ? { continue: `after:${items.at(-1)!.metadata?.name}` } : {};
      return { metadata: { resourceVersion: String(this.#rv), ...next }, items } as T;
    }
    const current = name ? store.get(name) : undefined;
    switch (request.method) {
      case "GET":
        return clone(current ?? fail(404, "NotFound")) as T;
      case "POST": {
        const object = clone(request.body as Obj);
        if (store.has(object.metadata!.name)) return fail(409, "AlreadyExists");
        object.metadata = { ...object.metadata, namespace, uid: `uid-${++this.#uid}`, creationTimestamp: new Date().toISOString() };
        return clone(this.#write(kind, store, object, "ADDED")) as T;
      }
      case "PUT": {
        if (!current) return fail(404, "NotFound");
        const object = clone(request.body as Obj);
        if (object.metadata?.resourceVersion !== current.metadata?.resourceVersion) return fail(409, "Conflict");
        object.metadata = { ...object.metadata, uid: current.metadata?.uid, creationTimestamp: current.metadata?.creationTimestamp };
        return clone(this.#write(kind, store, object, "MODIFIED")) as T;
      }
      case "PATCH": {
        if (!current) return fail(404, "NotFound");
        const next = clone(current);
        if (request.contentType === "application/json-patch+json") {
          for (const op of request.body as { op: string; path: string; value?: unknown }[]) applyJsonPatch(next, op);
        } else {
          const patch = request.body as { metadata: { uid?: string; annotations?: Record<string, string>; finalizers?: string[] } };
          if (patch.metadata.uid && patch.metadata.uid !== current.metadata?.uid) return fail(409, "Conflict", "uid precondition");
          if (patch.metadata.finalizers && current.metadata?.deletionTimestamp) return fail(422, "Invalid", "no new finalizers while deleting");
          next.metadata!.annotations = { ...next.metadata!.annotations, ...patch.metadata.annotations };
          if (patch.metadata.finalizers) next.metadata!.finalizers = [...new Set([...(next.metadata!.finalizers ?? []), ...patch.metadata.finalizers])];
        }
        if (current.metadata?.deletionTimestamp && next.metadata!.finalizers?.length === 0) {
          return clone(this.#remove(kind, store, next)) as T;
        }
        return clone(this.#write(kind, store, next, "MODIFIED")) as T;
      }
      case "DELETE": {
        if (!current) return fail(404, "NotFound");
        const preconditions = (request.body as { preconditions?: { uid?: string; resourceVersion?: string } } | undefined)?.preconditions ?? {};
        if (preconditions.uid && preconditions.uid !== current.metadata?.uid) return fail(409, "Conflict", "uid precondition");
        if (preconditions.resourceVersion && preconditions.resourceVersion !== current.metadata?.resourceVersion) return fail(409, "Conflict", "rv precondition");
        if (current.metadata?.finalizers?.length) {
          if (current.metadata.deletionTimestamp) return clone(current) as T;
          const next = clone(current);
          next.metadata!.deletionTimestamp = new Date().toISOString();
          return clone(this.#write(kind, store, next, "MODIFIED")) as T;
        }
        return clone(this.#remove(kind, store, current)) as T;
      }
    }
    return fail(405, "MethodNotAllowed");
  }

  async performStream<T = unknown>(request: KubeRequest & { method: "GET" }): Promise<ReadableStream<T>> {
    await new Promise((resolve) => setTimeout(resolve, 0));
    this.calls.push(`WATCH ${request.path} rv=${request.query?.resourceVersion}`);
    const injected = this.failures.shift();
    if (injected) throw injected;
    const from = Number(request.query?.resourceVersion ?? 0);
    const selector = request.query?.labelSelector ?? "";
    let watcher: { selector: string; controller: ReadableStreamDefaultController<WatchLine> };
    return new ReadableStream<WatchLine>({
      start: (controller) => {
        if (from < this.compactedAt) {
          controller.enqueue({ type: "ERROR", object: { kind: "Status", code: 410, reason: "Expired", message: "too old resource version" } });
          controller.close();
          return;
        }
        for (const entry of this.#history) {
          if (entry.rv > from && matches(entry.line.object as Obj, selector)) controller.enqueue(clone(entry.line));
        }
        watcher = { selector, controller };
        if (request.signal?.aborted) {
          // As fetch does with a signal aborted before the body is read.
          controller.error(request.signal.reason);
          return;
        }
        this.#watchers.add(watcher);
        request.signal?.addEventListener("abort", () => {
          this.#watchers.delete(watcher);
          try {
            controller.error(request.signal?.reason);
          } catch {
            // already closed
          }
        }, { once: true });
      },
      cancel: () => {
        this.#watchers.delete(watcher);
      },
    }) as unknown as ReadableStream<T>;
  }

  /** Ends every open watch, as a server timeout or a dropped connection does. */
  closeWatches(): void {
    for (const watcher of this.#watchers) watcher.controller.close();
    this.#watchers.clear();
  }

  /** Sends a bookmark to open watches. */
  bookmark(): void {
    const rv = ++this.#rv;
    for (const watcher of this.#watchers) watcher.controller.enqueue({ type: "BOOKMARK", object: { metadata: { resourceVersion: String(rv) } } });
  }

  /** A pod as the provisioner leaves it after admission, with the given status. */
  addPod(name: string, options: { gated?: boolean; status?: PodStatus; annotations?: Record<string, string>; labels?: Record<string, string>; createdAt?: string } = {}): Pod {
    const pod: Obj = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name,
        namespace: "ns",
        uid: `uid-${++this.#uid}`,
        creationTimestamp: options.createdAt ?? new Date().toISOString(),
        labels: { "app.kubernetes.io/managed-by": "podgateway-provisioner", setGateway: "foo", ...options.labels },
        annotations: { "podgateway.io/request-source": "/src", "podgateway.io/request-id": `req-${name}`, ...options.annotations },
      },
      spec: { containers: [], ...(options.gated ? { schedulingGates: [{ name: "podgateway.io/routing-verified" }] } : {}) },
      status: options.status ?? { phase: "Pending" },
    };
    return clone(this.#write("pods", this.pods as Map<string, Obj>, pod, "ADDED")) as Pod;
  }

  /** Replaces a pod's status, as the kubelet (or kwok) does through the status subresource. */
  setStatus(name: string, status: PodStatus): void {
    const pod = clone(this.pods.get(name)!) as Obj;
    pod.status = status;
    this.#write("pods", this.pods as Map<string, Obj>, pod, "MODIFIED");
  }

  #write(kind: string, store: Map<string, Obj>, object: Obj, type: string): Obj {
    object.metadata!.resourceVersion = String(++this.#rv);
    const previous = store.get(object.metadata!.name);
    store.set(object.metadata!.name, object);
    if (kind === "pods") this.#emit({ type, object: clone(object) }, previous);
    return object;
  }

  #remove(kind: string, store: Map<string, Obj>, object: Obj): Obj {
    store.delete(object.metadata!.name);
    const gone = clone(object);
    gone.metadata!.resourceVersion = String(++this.#rv);
    if (kind === "pods") this.#emit({ type: "DELETED", object: gone });
    return gone;
  }

  /** As the API server does for a watch with a selector: a change that makes a pod leave it is DELETED, join it ADDED. */
  #emit(line: WatchLine, previous?: Obj): void {
    this.#history.push({ rv: this.#rv, line });
    for (const watcher of this.#watchers) {
      const was = previous !== undefined && matches(previous, watcher.selector);
      if (matches(line.object as Obj, watcher.selector)) watcher.controller.enqueue(clone(was || line.type !== "MODIFIED" ? line : { ...line, type: "ADDED" }));
      else if (was) watcher.controller.enqueue(clone({ ...line, type: "DELETED" }));
    }
  }
}

/** Label selectors of equality (`a=b`) and absence (`!a`), which is all this service uses. */
function matches(object: Obj, selector: string): boolean {
  const labels = object.metadata?.labels ?? {};
  return selector.split(",").filter(Boolean).every((term) => {
    if (term.startsWith("!")) return labels[term.slice(1)] === undefined;
    const [key, value] = term.split("=");
    return labels[key!] === value;
  });
}

function applyJsonPatch(target: Obj, op: { op: string; path: string; value?: unknown }): void {
  const parts = op.path.split("/").slice(1).map((part) => part.replace(/~1/g, "/").replace(/~0/g, "~"));
  const last = parts.pop()!;
  let parent: any = target;
  for (const part of parts) {
    parent = parent?.[part];
    if (parent === undefined) fail(422, "Invalid", `path ${op.path} does not exist`);
  }
  const index = Array.isArray(parent) ? (last === "-" ? parent.length : Number(last)) : last;
  switch (op.op) {
    case "test":
      if (JSON.stringify(parent[index]) !== JSON.stringify(op.value)) fail(422, "Invalid", `test of ${op.path} failed`);
      return;
    case "remove":
      if (parent[index] === undefined) fail(422, "Invalid", `nothing at ${op.path}`);
      if (Array.isArray(parent)) parent.splice(index as number, 1);
      else delete parent[index];
      return;
    case "add":
      if (Array.isArray(parent)) parent.splice(index as number, 0, op.value);
      else parent[index] = op.value;
      return;
    case "replace":
      parent[index] = op.value;
  }
}

/** The lifecycle the unit tests run against `kube`: namespace "ns", gateway label and annotation setGateway. */
export function testLifecycle(kube: FakeKube, maxClientsPerGateway = 0) {
  return createLifecycle({
    kube, namespace: "ns", stamp: { source: "/provisioner", extensions: {} }, log: () => {},
    gatewayLabelKey: "setGateway", gatewayAnnotationKey: "setGateway", sidecarContainer: "gateway-sidecar",
    readyTimeoutMs: 0, maxClientsPerGateway,
  });
}
