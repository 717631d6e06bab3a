/**
 * What the lifecycle tracker writes on client pods: its finalizer, and the record of delivered transitions.
 * Every write tolerates the pod being gone (404): there is then nothing left to record.
 */
import { isStatus } from "../kube/errors.ts";
import { AGAIN, retryOnConflict } from "../retry.ts";
import { getPod, patchPod, strategicPatchPod } from "../kube/pods.ts";
import type { RestClient } from "../kube/rest-client.ts";
import { ANNOTATION_EMITTED, LIFECYCLE_FINALIZER, recordValue, type TrackedPod, type Transition } from "./client-state.ts";

const gone = (error: unknown) => isStatus(error, 404);

/**
 * Adds our finalizer (a strategic merge patch merges finalizer lists, so others' finalizers stay).
 * Pinned to the pod's uid: a namesake created later is never touched. A pod already being deleted cannot
 * get new finalizers (422); it is then reported without one, which only matters if we restart right now.
 */
export async function addFinalizer(kube: RestClient, pod: TrackedPod): Promise<void> {
  const { namespace, name, uid } = pod.metadata as { namespace: string; name: string; uid: string };
  try {
    await strategicPatchPod(kube, namespace, name, { metadata: { uid, finalizers: [LIFECYCLE_FINALIZER] } });
  } catch (error) {
    if (gone(error) || isStatus(error, 409, 422)) return;
    throw error;
  }
}

/** Records the delivered transitions on the pod, so that after a restart none is emitted again. */
export async function recordTransitions(kube: RestClient, pod: TrackedPod, transitions: Iterable<Transition>): Promise<void> {
  const { namespace, name, uid } = pod.metadata as { namespace: string; name: string; uid: string };
  try {
    await strategicPatchPod(kube, namespace, name, { metadata: { uid, annotations: { [ANNOTATION_EMITTED]: recordValue(transitions) } } });
  } catch (error) {
    if (gone(error) || isStatus(error, 409)) return;
    throw error;
  }
}

/**
 * Removes our finalizer once `deleted` was delivered, letting the pod go. The JSON Patch tests the entry it
 * removes, so a concurrent change to the list makes it fail (422) and we read the pod again.
 */
export async function removeFinalizer(kube: RestClient, pod: TrackedPod): Promise<void> {
  const { namespace, name, uid } = pod.metadata as { namespace: string; name: string; uid: string };
  let current: TrackedPod = pod;
  await retryOnConflict(5, async () => {
    if (current.metadata?.uid !== uid) return;
    const index = current.metadata?.finalizers?.indexOf(LIFECYCLE_FINALIZER) ?? -1;
    if (index < 0) return;
    try {
      await patchPod(kube, namespace, name, [
        { op: "test", path: "/metadata/uid", value: uid },
        { op: "test", path: `/metadata/finalizers/${index}`, value: LIFECYCLE_FINALIZER },
        { op: "remove", path: `/metadata/finalizers/${index}` },
      ]);
      return;
    } catch (error) {
      if (gone(error)) return;
      if (!isStatus(error, 422, 409)) throw error;
    }
    try {
      current = await getPod(kube, namespace, name);
    } catch (error) {
      if (gone(error)) return;
      throw error;
    }
    return AGAIN;
  }, `pod ${namespace}/${name}: finalizer ${LIFECYCLE_FINALIZER} could not be removed; retrying later`);
}
