/**
 * Leader election on a coordination.k8s.io Lease, with client-go's semantics: the holder renews the Lease every
 * `retryPeriod`; a candidate takes it over only once its record has not changed for `leaseDuration` (measured on
 * the candidate's own clock, so clock skew between machines does not matter); a leader that could not renew for
 * `renewDeadline` stops leading before anyone else may start. Every write carries the resourceVersion it read, so
 * of two candidates exactly one wins. On shutdown the leader gives the Lease up, and the next takes over at once.
 * Every duration is measured with the monotonic clock (`performance.now()`), as client-go does: a wall clock
 * set forward or back neither ends a term early nor makes a candidate take over a live Lease.
 */
import type { Lease } from "kubernetes-types/coordination/v1";
import { isStatus } from "../kube/errors.ts";
import { createLease, getLease, microTime, updateLease } from "../kube/leases.ts";
import type { RestClient } from "../kube/rest-client.ts";
import type { Logger } from "../observability/log.ts";
import { sleep } from "../retry.ts";

/** Where the Lease is, who we are, and the timing (defaults: 15 s, 10 s, 2 s, as in client-go's controllers). */
export interface LeaderElectionOptions {
  kube: RestClient;
  namespace: string;
  name: string;
  /** Unique per process: a restarted process is a new candidate. */
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  log: Logger;
}

/**
 * One term of leadership, as `lead` sees it. Nothing may be written once it is over: its signal goes with every
 * write, and {@link Term.holds} is asked just before one.
 */
export interface Term {
  /** Aborts when leadership ends: lost, not renewed within the renew deadline, or given up at shutdown. */
  readonly signal: AbortSignal;
  /**
   * Whether the term still holds by the monotonic clock: a process that was paused (SIGSTOP, a long GC, a
   * frozen VM) past its renew deadline learns here, before its first write, that it is over, even before its
   * own timers had a chance to notice. Aborts {@link Term.signal} when the term is over.
   */
  holds(): boolean;
}

/**
 * Competes for the Lease until `signal` aborts; while this process holds it, `lead` runs with the {@link Term},
 * whose signal aborts when leadership is lost (or at shutdown). Returns after giving the Lease up.
 */
export async function runLeaderElection(options: LeaderElectionOptions, lead: (term: Term) => Promise<void>, signal: AbortSignal): Promise<void> {
  const { kube, namespace, name, identity, log } = options;
  const leaseDurationMs = options.leaseDurationMs ?? 15_000;
  const renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
  const retryPeriodMs = options.retryPeriodMs ?? 2_000;
  /** The record as last seen, and when (our monotonic clock): a record unchanged for leaseDuration has expired. */
  let observed: { version: string; at: number } | undefined;

  /** One attempt to acquire or renew: whether we hold the Lease afterwards, or someone else does. */
  async function tryAcquireOrRenew(signal: AbortSignal): Promise<"held" | "other"> {
    const now = performance.now();
    const wallNow = Date.now();
    let lease: Lease | undefined;
    try {
      lease = await getLease(kube, namespace, name, signal);
    } catch (error) {
      if (!isStatus(error, 404)) throw error;
    }
    const mine = (transitions: number, acquired?: string): Lease => ({
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: { name, namespace, ...(lease ? { resourceVersion: lease.metadata?.resourceVersion } : {}) },
      spec: {
        holderIdentity: identity,
        leaseDurationSeconds: Math.ceil(leaseDurationMs / 1000),
        acquireTime: acquired ?? microTime(wallNow),
        renewTime: microTime(wallNow),
        leaseTransitions: transitions,
      },
    });
    if (!lease) {
      await createLease(kube, namespace, mine(0), signal);
      return "held";
    }
    const spec = lease.spec ?? {};
    const version = lease.metadata?.resourceVersion ?? "";
    if (observed?.version !== version) observed = { version, at: now };
    const held = spec.holderIdentity === identity;
    const free = !spec.holderIdentity || now - observed.at >= leaseDurationMs;
    if (!held && !free) return "other";
    const transitions = (spec.leaseTransitions ?? 0) + (held ? 0 : 1);
    const updated = await updateLease(kube, namespace, mine(transitions, held ? spec.acquireTime ?? undefined : undefined), signal);
    observed = { version: updated.metadata?.resourceVersion ?? "", at: now };
    return "held";
  }

  /** `timeoutMs`: a slow API server must not keep a leader working past its renew deadline. */
  const attempt = async (timeoutMs: number): Promise<"held" | "other" | "unknown"> => {
    try {
      return await tryAcquireOrRenew(AbortSignal.any([signal, AbortSignal.timeout(Math.max(Math.ceil(timeoutMs), 1))]));
    } catch (error) {
      // 409: another candidate wrote first. Anything else (API down): we cannot tell; the deadline decides.
      if (isStatus(error, 409)) return "other";
      if (!signal.aborted) log({ msg: "leader election: attempt failed", lease: `${namespace}/${name}`, error: (error as Error).message });
      return "unknown";
    }
  };

  while (!signal.aborted) {
    const attemptStarted = performance.now();
    if ((await attempt(retryPeriodMs)) !== "held") {
      await sleep(retryPeriodMs, signal);
      continue;
    }
    // The term runs from the start of the attempt that won it: the record we wrote is at least that recent.
    let renewed = attemptStarted;
    const started = attemptStarted;
    log({ msg: "leader election: leading", lease: `${namespace}/${name}`, identity });
    const leading = new AbortController();
    const stopLeading = () => leading.abort();
    signal.addEventListener("abort", stopLeading, { once: true });
    const term: Term = {
      signal: leading.signal,
      holds: () => {
        if (performance.now() - renewed >= renewDeadlineMs) leading.abort();
        return !leading.signal.aborted;
      },
    };
    const work = lead(term).catch((error) => log({ msg: "leader work failed", error: (error as Error).message }));
    while (!signal.aborted) {
      await sleep(retryPeriodMs, signal);
      if (signal.aborted || !term.holds()) break;
      const renewing = performance.now();
      const outcome = await attempt(renewed + renewDeadlineMs - renewing);
      if (outcome === "held" && term.holds()) renewed = renewing;
      else if (outcome === "other" || !term.holds()) break;
    }
    leading.abort();
    signal.removeEventListener("abort", stopLeading);
    await work;
    log({ msg: "leader election: stopped leading", lease: `${namespace}/${name}`, identity, ledMs: Math.round(performance.now() - started) });
    if (signal.aborted) await release();
  }

  /** Shutdown: hand the Lease over now instead of making the next leader wait out its duration. */
  async function release(): Promise<void> {
    try {
      const lease = await getLease(kube, namespace, name);
      if (lease.spec?.holderIdentity !== identity) return;
      await updateLease(kube, namespace, { ...lease, spec: { ...lease.spec, holderIdentity: "", leaseDurationSeconds: 1, renewTime: microTime(Date.now()) } });
    } catch (error) {
      log({ msg: "leader election: could not give the Lease up; the next leader waits for it to expire", error: (error as Error).message });
    }
  }
}
