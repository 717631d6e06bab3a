/** Upper bounds (seconds) of the provisioning latency histogram: API round trips on a local network up to timeouts. */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Outcome of one received event, as counted and logged. */
export type Outcome = "done" | "failed" | "retry" | "ignored" | "rejected" | "busy";

/** What happened in a gateway's warm pool: a member claimed, a pooled request served cold, a member made. */
export type PoolOutcome = "claim" | "miss" | "refill";

/** The service's Prometheus metrics, kept in memory and rendered as text exposition format. */
export class Metrics {
  readonly #events = new Map<string, number>();
  readonly #buckets = LATENCY_BUCKETS.map(() => 0);
  #latencyCount = 0;
  #latencySum = 0;
  readonly #pool = new Map<string, number>();

  /** Counts one event; `type` is bucketed to keep the label set small whatever senders send. */
  countEvent(type: string, outcome: Outcome): void {
    const key = `${type}\0${outcome}`;
    this.#events.set(key, (this.#events.get(key) ?? 0) + 1);
  }

  /** Counts one pool outcome of a pooled gateway (only gateways named by --warm-pool: the label set stays small). */
  countPool(gateway: string, outcome: PoolOutcome): void {
    const key = `${gateway}\0${outcome}`;
    this.#pool.set(key, (this.#pool.get(key) ?? 0) + 1);
  }

  observeProvisioning(seconds: number): void {
    this.#latencyCount++;
    this.#latencySum += seconds;
    LATENCY_BUCKETS.forEach((bound, index) => {
      if (seconds <= bound) this.#buckets[index]!++;
    });
  }

  render(): string {
    const lines = [
      "# HELP podgateway_events_total CloudEvents received, by type and outcome.",
      "# TYPE podgateway_events_total counter",
    ];
    for (const [key, count] of this.#events) {
      const [type, outcome] = key.split("\0");
      lines.push(`podgateway_events_total{type="${escape(type!)}",outcome="${outcome}"} ${count}`);
    }
    lines.push(
      "# HELP podgateway_provisioning_seconds Time from a pending event to its final answer (done or failed).",
      "# TYPE podgateway_provisioning_seconds histogram",
    );
    LATENCY_BUCKETS.forEach((bound, index) => lines.push(`podgateway_provisioning_seconds_bucket{le="${bound}"} ${this.#buckets[index]}`));
    lines.push(
      `podgateway_provisioning_seconds_bucket{le="+Inf"} ${this.#latencyCount}`,
      `podgateway_provisioning_seconds_sum ${this.#latencySum}`,
      `podgateway_provisioning_seconds_count ${this.#latencyCount}`,
    );
    if (this.#pool.size > 0) {
      lines.push(
        "# HELP podgateway_pool_total Warm pool: members claimed, pooled requests served cold (misses), members made (refills).",
        "# TYPE podgateway_pool_total counter",
      );
      for (const [key, count] of this.#pool) {
        const [gateway, outcome] = key.split("\0");
        lines.push(`podgateway_pool_total{gateway="${escape(gateway!)}",outcome="${outcome}"} ${count}`);
      }
    }
    return lines.join("\n") + "\n";
  }
}

function escape(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}
