/** The shape of bench/results/<date>.json (schema 1), written by bench/run.ts and read by bench/report.ts. */
import type { Summary } from "./lib/stats.ts";

/** min, percentiles, max and mean of a set of latencies, in ms. */
export type LatencySummary = Summary;

/** What one load run counts: the fields a load result (bench/lib/load.ts) and a recorded side share. */
export interface LoadCounts {
  events: number;
  /** Events answered with a routed pod (done). */
  done: number;
  /** Events that got a permanent answer other than done (should be 0 here). */
  failed: number;
  /** Events given up on after maxAttempts: lost. */
  lost: number;
  /** Events never sent because the phase ran out of time (the load loop is bounded in time too). */
  unsent: number;
  /** Extra attempts, by cause: "429", "503", "transport", "transient" (baseline). */
  retries: Record<string, number>;
  /** First send to last answer. */
  wallMs: number;
}

/** How a side compares with the baseline it was interleaved with. */
export interface Comparison {
  /** side.perSecond / baseline.perSecond */
  ratio: number;
  addedP50Ms: number;
  addedP99Ms: number;
  /** Median over blocks of (side block p50 − the neighbouring baseline block p50): robust against drift in the machine's load. */
  pairedAddedP50Ms: number;
  blockAddedP50Ms: number[];
}

/** One side (baseline or ours) of one concurrency point. */
export interface Side extends LoadCounts {
  /** Events answered with a routed pod, per second of wall time. */
  perSecond: number;
  latencyMs: LatencySummary;
  /** CPU milliseconds per event, by process: cluster components, "service" (ours only) and "bench" (this process). */
  cpuMsPerEvent: Record<string, number>;
  /** CPU seconds used by all those processes per second of wall time (2.0 = both cores busy). */
  cpuUtilisation: number;
  /** CPU-seconds per wall-second used by every other process on the machine (not part of the benchmark): noise. */
  otherCpuUtilisation: number;
  /** API server requests per event during the timed run, by "VERB resource[/subresource]" (all clients, cluster components too). */
  apiCallsPerEvent: Record<string, number>;
  /** A cluster component restarted during the measurement (someone else's fault test): the numbers are not comparable. */
  disturbed?: boolean;
}

/** A side measured against the same baseline: another runtime of ours, or a peer (Knative JobSink). */
export interface PeerSide extends Side, Comparison {}

/** One concurrency point; its {@link Comparison} is ours against the baseline. */
export interface ThroughputPoint extends Comparison {
  concurrency: number;
  /** Timed events ran in this many alternating blocks per side, of this many events each. */
  blocks: number;
  blockSize: number;
  baseline: Side;
  /** What ships: the single executable when built, else the Node service. */
  ours: Side;
  /** "exe" or "node" (absent in older results: the Node service). */
  oursRuntime?: string;
  /** The other sides of the same interleaved run: "node" (when ours is the executable), "jobsink". */
  peers?: Record<string, PeerSide>;
}

export interface ColdRun {
  runtime: string;
  /** The first answer was the done event for a routed pod. */
  ok: boolean;
  error: string | undefined;
  execToListeningMs: number;
  execToFirstAnswerMs: number;
  /** The first event's own round trip (provisioning on a cold connection included). */
  firstEventMs: number;
  rssAfterFirstEventMiB: number;
}

export interface ColdSummary {
  runtime: string;
  runs: number;
  /** Runs whose first answer was not done (then exec → first answer is not counted). */
  failedRuns: number;
  firstError: string | undefined;
  execToFirstAnswerMs: { median: number; min: number; max: number };
  execToListeningMs: { median: number; min: number; max: number };
  rssAfterFirstEventMiB: number;
}

/** One fresh process of one side (phases/fresh.ts): started, warmed up, then timed. */
export interface FreshRun {
  /** "exe" (ours) or "jobsink" (the peer). */
  side: string;
  run: number;
  concurrency: number;
  /** exec → the first warm-up event answered (JobSink: from its binary's exec, after its namespace and relay). */
  execToFirstAnswerMs: number;
  /** The process's own CPU from exec to that first answer (ms). */
  startCpuMs: number;
  /** The process's own CPU per timed event (ms), the warm-up excluded. */
  cpuMsPerEvent: number;
  perSecond: number;
  latencyMs: { p50: number; p99: number };
  /** CPU-seconds per wall-second used by every other process on the machine meanwhile (noise). */
  otherCpuUtilisation: number;
}

/** One side at one concurrency, over its runs: medians, with the spread of CPU per event. */
export interface FreshSummary {
  side: string;
  concurrency: number;
  runs: number;
  cpuMsPerEvent: { median: number; min: number; max: number };
  perSecond: number;
  latencyP50Ms: number;
}

/** What a new revision pod does (Knative scale-up from zero): fresh processes, each warmed up briefly, then timed. */
export interface FreshResult {
  warmupEvents: number;
  events: number;
  runs: FreshRun[];
  summary: FreshSummary[];
  /** Per side, over every start (all runs and concurrencies). */
  execToFirstAnswerMs: Record<string, { n: number; median: number; min: number; max: number }>;
  skipped: { side: string; reason: string }[];
}

export interface RssResult {
  runtime: string;
  /** "exe", "node", "node --max-semi-space-size=2" (absent in older results: the Node service). */
  variant?: string;
  /** The command line, relative to the repository. */
  command?: string;
  idleMiB: number;
  checkpoints: { events: number; rssMiB: number }[];
  peakMiB: number;
  /** Change from the first to the last checkpoint (1,000 → 10,000 events in a full run). */
  changeFirstToLastPct: number | null;
  /** The service process's CPU per event over the whole phase (absent in older results). */
  serviceCpuMsPerEvent?: number;
  samples: { events: number; rssMiB: number }[];
}

export interface BurstResult {
  events: number;
  senders: number;
  drainMs: number;
  perSecond: number;
  done: number;
  podsCreated: number;
  duplicates: number;
  /** Events not answered done within the retry window, or without their pod. */
  lost: number;
  retries: Record<string, number>;
  /** The most deliveries any one event needed. */
  maxAttempts: number;
  /** How long a sender kept redelivering one event before giving up (a broker's retry window). */
  retryWindowS: number;
  latencyMs: LatencySummary;
  cpuMsPerEvent: Record<string, number>;
}

export type ImageResult =
  | { skipped: string }
  | {
    runtime: string;
    builtFrom: string;
    binaryMiB: number;
    rootfsMiB: number;
    uncompressedMiB: number;
    gzipMiB: number | null;
    /** The image last pushed by `npm run publish:local`, if any: compressed size = config + layers from its manifest. */
    pushed?: { ref: string; digest: string; compressedMiB: number; source: string } | null;
    note: string;
  };

/** One event sent as concurrent copies, and bad input: what a receiver answered and what it created. */
export interface CorrectnessResult {
  runtime: string;
  copies: { sent: number; statuses: number[]; created: number };
  badInput: { name: string; status: number; answer: string; created: number }[];
}

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export interface Results {
  schema: 1;
  mode: "full" | "quick";
  startedAt: string;
  finishedAt: string;
  durationS: number;
  machine: { cpus: number; cpuModel: string; memoryGiB: number; kernel: string; loadavgStart: number[]; loadavgEnd: number[] };
  versions: Record<string, string>;
  git: { commit: string; describe: string; serviceFilesChanged: string[] };
  settings: Record<string, unknown>;
  throughput: ThroughputPoint[];
  coldStart: { runs: ColdRun[]; summary: ColdSummary[]; skipped: { runtime: string; reason: string }[] };
  /** The Node service (`node src/main/node.ts`), as in older results; also in rssVariants. */
  rss: RssResult | undefined;
  /** Every variant measured (the executable first, when built). Absent in older results. */
  rssVariants?: RssResult[] | undefined;
  /** Variants not measured, and why (the executable when dist/ is absent). */
  rssSkipped?: { variant: string; reason: string }[] | undefined;
  burst: BurstResult | undefined;
  image: ImageResult | undefined;
  /** Absent in older results. */
  correctness?: CorrectnessResult[];
  /** Fresh processes beside the peer (absent in older results and runs without the phase). */
  fresh?: FreshResult;
  checks: Check[];
  notes: string[];
}

/** One latency probe of the scale run: {@link ScaleResults}. Milliseconds, first attempt to answer. */
export interface ScaleLatency {
  concurrency: number;
  p50: number;
  p90: number;
  p99: number;
  eventsPerS: number;
  /** CPU per event of the service process and of the API server during the probe (absent in older runs). */
  serviceCpuMs?: number;
  apiserverCpuMs?: number;
}

/** `node bench/scale.ts`: the service and the controller at the size of a large install. */
export interface ScaleResults {
  startedAt: string;
  durationS: number;
  runtime: string;
  machine: Results["machine"];
  pods: number;
  concurrency: number;
  /** The bulk of the pending events; `allReadyS`: until the sink had a ready event for every pod. */
  fill: { events: number; seconds: number; eventsPerS: number; allReadyS: number };
  latency: { empty: ScaleLatency[]; full: ScaleLatency[] };
  /** The leader while it tracked every pod: CPU per pod over the fill, and per minute once all were ready. */
  controller: { rssMiB: number; peakRssMiB: number; cpuPerPodMs: number; idleCpuPerMinS: number };
  /** The standby after the leader's kill -9: to lead, to list and resume (the tracker's own timing), from the kill. */
  takeover: { toLeadMs: number; listedPods: number; listMs: number; toResumeMs: number; cpuS: number; rssMiB: number };
  uninstall: { removeFinalizersS: number; namespaceGoneS: number | null };
  /** Every 10 s during the fill. */
  samples: { s: number; pods: number; ready: number; controllerRssMiB: number; controllerCpuS: number; serviceRssMiB: number }[];
  checks: Check[];
}
