/**
 * A pending event for a gateway with a warm pool: a Ready member claimed when one is free, else today's cold path
 * at once. Both paths go through the request's claim record (src/pool/claim.ts), so two deliveries of one request
 * that took different paths (one found a member, the other none) still end with one client: whichever recorded
 * first serves, and the other delivery's gated pod is deleted before it could ever be scheduled.
 */
import type { Pod } from "kubernetes-types/core/v1";
import { KubeTransportError } from "../kube/errors.ts";
import type { Metrics } from "../observability/metrics.ts";
import { type ClientRequest, clientPodName } from "../provision/client-pod.ts";
import { type Provisioned, provisionClient, type ProvisionerOptions } from "../provision/provisioner.ts";
import { type ClaimOptions, claimName, recordClaim, type Recorded, takeMember } from "./claim.ts";
import type { PoolMembers } from "./members.ts";

/** The service's side of the warm pool. */
export interface WarmPool {
  /** Pool size by gateway; a gateway not named has no pool (today's path, no claim record). */
  sizes: Readonly<Record<string, number>>;
  members: Pick<PoolMembers, "take" | "release">;
  claim: ClaimOptions;
  metrics: Pick<Metrics, "countPool">;
}

/** A provisioning that says which path served it; `at`: when the claim was recorded (a warm client's done time). */
export type Served = Extract<Provisioned, { ok: false }> | (Extract<Provisioned, { ok: true }> & { servedFrom: "pool" | "cold"; at?: string });

/** Members tried before the cold path: each lost try was a member another request (in another replica) took first. */
const CLAIM_ROUNDS = 8;

/**
 * Serves `request` from the pool of its gateway, or cold. Exactly once, like {@link provisionClient}: safe to run
 * any number of times, concurrently, in any replica.
 * @throws KubeTransportError or a transient KubeApiError: the sender should retry.
 */
export function serveFromPool(options: ProvisionerOptions, pool: WarmPool, request: ClientRequest, signal?: AbortSignal): Promise<Served> {
  // Deliveries of one request at once in this process share one claim: a second would hold a second member back
  // only to lose the claim record to the first. (Across processes the record decides.)
  const key = claimName(request);
  let claims = underway.get(pool);
  if (!claims) underway.set(pool, claims = new Map());
  const running = claims.get(key);
  if (running) return running;
  const serving = serve(options, pool, request, signal).finally(() => claims.delete(key));
  claims.set(key, serving);
  return serving;
}

/** Claims under way, by pool and claim name. */
const underway = new WeakMap<WarmPool, Map<string, Promise<Served>>>();

async function serve(options: ProvisionerOptions, pool: WarmPool, request: ClientRequest, signal?: AbortSignal): Promise<Served> {
  const { members, claim } = pool;
  const gateway = request.gatewayName;
  for (let round = 0; round < CLAIM_ROUNDS; round++) {
    const member = await members.take(gateway);
    if (!member) break;
    /** Whether the member left the pool (claimed, by us or another request): never picked again here. */
    let left = false;
    try {
      const recorded = await recordClaim(claim, request, member, signal);
      // An earlier delivery went cold: this one meets its pod there.
      if (recorded.pod.metadata?.name === clientPodName(request)) return await cold(options, pool, request, signal, false);
      const claimed = await takeMember(claim, request, recorded.pod, signal);
      left = recorded.pod.metadata?.uid === member.metadata?.uid;
      if (claimed) return warm(pool, gateway, claimed, recorded);
      // The recorded member went to another request first: the next round's record replaces this stale one.
    } finally {
      members.release(member, left);
    }
  }
  return await cold(options, pool, request, signal, true);
}

function warm(pool: WarmPool, gateway: string, pod: Pod, recorded: Recorded): Served {
  const { name, namespace } = pod.metadata as { name: string; namespace: string };
  pool.metrics.countPool(gateway, "claim");
  return { ok: true, pod, name, namespace, servedFrom: "pool", at: recorded.at };
}

/**
 * Today's path, with the claim record written just before the routing gate is lifted. When another delivery of
 * the request recorded a member first, the record says so: the provisioner deletes this delivery's gated pod (an
 * admission refusal does that) and the member is the answer.
 */
async function cold(options: ProvisionerOptions, pool: WarmPool, request: ClientRequest, signal: AbortSignal | undefined, miss: boolean): Promise<Served> {
  let elsewhere: Recorded | undefined;
  const result = await provisionClient({
    ...options,
    admit: async (pod, request, signal) => {
      const recorded = await recordClaim(pool.claim, request, pod, signal);
      if (recorded.pod.metadata?.uid !== pod.metadata?.uid) {
        elsewhere = recorded;
        return { reason: "NameConflict", message: `served by pool member ${recorded.pod.metadata?.name}` };
      }
      return await options.admit?.(pod, request, signal);
    },
  }, request, signal);
  if (elsewhere) {
    const pod = await takeMember(pool.claim, request, elsewhere.pod, signal);
    if (!pod) throw new KubeTransportError(`the pool member recorded for request ${request.id} went to another request; retry`);
    return warm(pool, request.gatewayName, pod, elsewhere);
  }
  if (miss) pool.metrics.countPool(request.gatewayName, "miss");
  return result.ok ? { ...result, servedFrom: "cold" } : result;
}
