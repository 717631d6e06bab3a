/**
 * The fault tests' common frame: a fresh routed namespace and, unless asked not to, a watch of its pods, made
 * before the file's tests and removed after them, and `clusterAsync` to stop and start a component while a load
 * runs. Call it inside the `describe`; its `before` runs ahead of the file's own (services start afterwards).
 */
import { execFile } from "node:child_process";
import { after, before } from "node:test";
import { promisify } from "node:util";
import { repo, routedNamespace } from "./cluster.ts";
import { type PodWatch, watchPods } from "./pod-watch.ts";

/** `cluster/cluster.sh <args>` without blocking the event loop (a load keeps running meanwhile). */
export const clusterAsync = (...args: string[]) => promisify(execFile)("bash", [`${repo}/cluster/cluster.sh`, ...args]);

export interface FaultFrame {
  readonly namespace: Awaited<ReturnType<typeof routedNamespace>>;
  /** Every state the namespace's pods went through (absent with `watch: false`). */
  readonly watch: PodWatch;
}

/**
 * Registers the frame's hooks. `cleanup` runs first after the tests (stop the file's services, restart what a
 * test stopped), then the watch stops and the namespace is removed.
 */
export function faultFrame(prefix: string, options: { watch?: boolean; cleanup?: () => unknown } = {}): FaultFrame {
  const frame = {} as { namespace: FaultFrame["namespace"]; watch: PodWatch };
  before(async () => {
    frame.namespace = await routedNamespace(prefix);
    if (options.watch === false) return;
    frame.watch = watchPods(frame.namespace.name);
    await frame.watch.ready;
  });
  after(async () => {
    await options.cleanup?.();
    await frame.watch?.stop();
    await frame.namespace?.remove();
  });
  return frame;
}
