import * as v from "valibot";
import { LabelValue } from "./events/schema.ts";
import type { StateRules } from "./lifecycle/client-state.ts";
import type { ClientPodSettings } from "./provision/client-pod.ts";

/** Every option: its flag, its environment variable, its default and what it means (the `--help` text). */
const OPTIONS = {
  "client-namespace": { env: "CLIENT_NAMESPACE", default: "default", help: "namespace of client pods (must carry the routed-gateway label)" },
  "client-image": { env: "CLIENT_IMAGE", default: "", help: "image of the client container (the first one); default: alpine/curl, or the template's" },
  "client-command": { env: "CLIENT_COMMAND", default: "", help: "command of the client container: words split on spaces, or a JSON array; default: sleep infinity, or the template's" },
  "client-pod-template": { env: "CLIENT_POD_TEMPLATE", default: "", help: "file with a Pod or PodTemplate (YAML or JSON) for client pods; default: a locked-down pod" },
  "gateways": { env: "GATEWAYS", default: "", help: "comma-separated gateway names events may choose; others fail at once (UnknownGateway); empty: any" },
  "gateway-label": { env: "GATEWAY_LABEL", default: "setGateway", help: "label key the pod-gateway webhook matches; empty for none" },
  "gateway-annotation": { env: "GATEWAY_ANNOTATION", default: "setGateway", help: "annotation key the pod-gateway webhook matches; empty for none" },
  "routing-init-container": { env: "ROUTING_INIT_CONTAINER", default: "gateway-init", help: "init container whose presence proves the webhook routed a pod" },
  "client-lifecycle-events": { env: "CLIENT_LIFECYCLE_EVENTS", default: "false", help: "controller: watch client pods and send ready/failed/deleted events to K_SINK (puts a finalizer on client pods)" },
  "gated-pod-timeout-seconds": { env: "GATED_POD_TIMEOUT_SECONDS", default: "300", help: "controller: a pod still behind the routing gate this long after creation is an abandoned request and is deleted; 0 for never" },
  "leader-lease-duration-seconds": { env: "LEADER_LEASE_DURATION_SECONDS", default: "15", help: "controller: a leader's Lease not renewed this long may be taken over" },
  "leader-renew-deadline-seconds": { env: "LEADER_RENEW_DEADLINE_SECONDS", default: "10", help: "controller: a leader that could not renew this long stops leading" },
  "leader-retry-period-seconds": { env: "LEADER_RETRY_PERIOD_SECONDS", default: "2", help: "controller: how often the Lease is renewed or tried" },
  "gateway-sidecar-container": { env: "GATEWAY_SIDECAR_CONTAINER", default: "gateway-sidecar", help: "sidecar container that must run for a client to be ready" },
  "client-max-lifetime-seconds": { env: "CLIENT_MAX_LIFETIME_SECONDS", default: "0", help: "maximum lifetime of a client pod (activeDeadlineSeconds); 0 for none" },
  "client-ready-timeout-seconds": { env: "CLIENT_READY_TIMEOUT_SECONDS", default: "300", help: "a client not ready this long after creation fails and is deleted; 0 for no limit" },
  "max-clients-per-gateway": { env: "MAX_CLIENTS_PER_GATEWAY", default: "0", help: "clients one gateway may have at once; beyond it, GatewayAtCapacity; 0 for unlimited" },
  "warm-pool": { env: "WARM_POOL", default: "", help: "ready, routed clients kept per gateway, e.g. foo=3,bar=1 (the controller keeps them, the service hands them out); empty or 0: none" },
  "event-source": { env: "EVENT_SOURCE", default: "/podgateway/provisioner", help: "source attribute of result events" },
  "oidc-audience": { env: "OIDC_AUDIENCE", default: "", help: "require Knative OIDC sender tokens for this audience (TokenReview); empty: no sender authentication" },
  "allowed-senders": { env: "ALLOWED_SENDERS", default: "", help: "comma-separated usernames allowed to send when --oidc-audience is set; * for any" },
  "sink-token-file": { env: "K_SINK_TOKEN_FILE", default: "/oidc/token", help: "OIDC token sent to K_SINK (Bearer) while this file exists: where Knative's SinkBinding mounts it with authentication-oidc on" },
  "kubeconfig": { env: "KUBECONFIG", default: "", help: "kubeconfig file (default: in-cluster service account, else ~/.kube/config)" },
  "kube-timeout-ms": { env: "KUBE_TIMEOUT_MS", default: "10000", help: "deadline of one Kubernetes API call" },
  "max-in-flight": { env: "MAX_IN_FLIGHT", default: "256", help: "events handled at once; more are answered 429" },
  "max-body-bytes": { env: "MAX_BODY_BYTES", default: "1048576", help: "largest request body; larger ones are answered 413" },
  "host": { env: "HOST", default: "0.0.0.0", help: "address to listen on" },
  "port": { env: "PORT", default: "8080", help: "port to listen on" },
  "shutdown-grace-ms": { env: "SHUTDOWN_GRACE_MS", default: "25000", help: "on SIGTERM, how long in-flight events may take before exit 1" },
} as const;

type OptionName = keyof typeof OPTIONS;

/** Every environment variable the configuration reads (one per option). */
export const CONFIG_ENV: readonly string[] = Object.values(OPTIONS).map((option) => option.env);

const LabelKey = v.union([
  v.literal(""),
  v.pipe(v.string(), v.regex(/^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/, "must be a Kubernetes label key"), v.maxLength(316)),
], "must be a Kubernetes label key or empty");
const Integer = (min: number, max: number) =>
  v.pipe(v.string(), v.regex(/^\d+$/, "must be a whole number"), v.transform(Number), v.minValue(min, `must be at least ${min}`), v.maxValue(max, `must be at most ${max}`));
const Command = v.pipe(
  v.string(),
  v.transform((text) => text.trim().startsWith("[") ? safeJson(text) : text.trim().split(/\s+/).filter(Boolean)),
  v.array(v.string(), "must be words or a JSON array of strings"),
  v.minLength(1, "must not be empty"),
);

/** `foo=3,bar=1`: pool sizes by gateway name; a size of 0 is no pool (left out). */
const WarmPool = v.pipe(
  v.string(),
  v.transform((text) => text.split(",").map((entry) => entry.trim()).filter(Boolean)),
  v.array(v.pipe(v.string(), v.regex(/^[^=]+=\d+$/, "must be gateway=size pairs, comma-separated (e.g. foo=3,bar=1)"))),
  v.transform((entries) => entries.map((entry) => entry.split("=") as [string, string])),
  v.array(v.tuple([LabelValue, v.pipe(v.string(), v.transform(Number), v.maxValue(1000, "sizes must be at most 1000"))])),
  v.check((pairs) => new Set(pairs.map(([name]) => name)).size === pairs.length, "must name each gateway once"),
  v.transform((pairs) => Object.fromEntries(pairs.filter(([, size]) => size > 0)) as Record<string, number>),
);

/** The configuration schema: flags and environment arrive as strings and leave typed. */
const ConfigSchema = v.pipe(
  v.object({
    "client-namespace": v.pipe(v.string(), v.regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "must be a namespace name"), v.maxLength(63)),
    // Empty: not set, so the template's image and command stay (ClientPodSettings in src/provision/client-pod.ts).
    "client-image": v.string(),
    "client-command": v.union([v.pipe(v.literal(""), v.transform(() => undefined)), Command], "must be words or a JSON array of strings"),
    "client-pod-template": v.string(),
    "gateways": v.pipe(
      v.string(),
      v.transform((text) => text.split(",").map((name) => name.trim()).filter(Boolean)),
      v.array(LabelValue, "must be gateway names (Kubernetes label values), comma-separated"),
    ),
    "gateway-label": LabelKey,
    "gateway-annotation": LabelKey,
    "routing-init-container": v.pipe(v.string(), v.nonEmpty("must not be empty")),
    "client-lifecycle-events": v.pipe(v.picklist(["true", "false"], "must be true or false"), v.transform((text) => text === "true")),
    "gateway-sidecar-container": v.pipe(v.string(), v.nonEmpty("must not be empty")),
    "gated-pod-timeout-seconds": Integer(0, 7 * 24 * 3600),
    "leader-lease-duration-seconds": Integer(1, 3600),
    "leader-renew-deadline-seconds": Integer(1, 3600),
    "leader-retry-period-seconds": Integer(1, 3600),
    "client-max-lifetime-seconds": Integer(0, 2 ** 31 - 1),
    "client-ready-timeout-seconds": Integer(0, 7 * 24 * 3600),
    "max-clients-per-gateway": Integer(0, 100_000),
    "warm-pool": WarmPool,
    "event-source": v.pipe(v.string(), v.nonEmpty("must not be empty")),
    "oidc-audience": v.string(),
    "allowed-senders": v.pipe(v.string(), v.transform((text) => text.split(",").map((name) => name.trim()).filter(Boolean))),
    "sink-token-file": v.string(),
    "kubeconfig": v.string(),
    "kube-timeout-ms": Integer(100, 600_000),
    "max-in-flight": Integer(1, 100_000),
    "max-body-bytes": Integer(1024, 64 * 1024 * 1024),
    "host": v.string(),
    "port": Integer(0, 65535),
    "shutdown-grace-ms": Integer(0, 3_600_000),
  }),
  v.check((c) => Boolean(c["gateway-label"] || c["gateway-annotation"]), "--gateway-label and --gateway-annotation cannot both be empty"),
  v.check(
    (c) => c["leader-retry-period-seconds"] < c["leader-renew-deadline-seconds"] && c["leader-renew-deadline-seconds"] < c["leader-lease-duration-seconds"],
    "leader election needs --leader-retry-period-seconds < --leader-renew-deadline-seconds < --leader-lease-duration-seconds",
  ),
  v.check(
    (c) => c.gateways.length === 0 || Object.keys(c["warm-pool"]).every((name) => c.gateways.includes(name)),
    "--warm-pool may only name gateways that --gateways lists",
  ),
  v.check(
    (c) => !c["oidc-audience"] || c["allowed-senders"].length > 0,
    "--oidc-audience needs --allowed-senders (usernames, or * for any authenticated sender)",
  ),
);

/** The service's configuration, derived from {@link ConfigSchema}. */
export type Config = v.InferOutput<typeof ConfigSchema>;

/**
 * What the configuration means to the parts that share it, mapped once: the client pods (without a template:
 * the service adds the loaded one) and the state rules of clients. The service and the controller both use it.
 */
export function clientSettings(config: Config): { pod: ClientPodSettings; rules: StateRules } {
  return {
    pod: {
      namespace: config["client-namespace"],
      image: config["client-image"],
      command: config["client-command"],
      gatewayLabelKey: config["gateway-label"],
      gatewayAnnotationKey: config["gateway-annotation"],
      activeDeadlineSeconds: config["client-max-lifetime-seconds"] || undefined,
    },
    rules: { sidecarContainer: config["gateway-sidecar-container"], readyTimeoutMs: config["client-ready-timeout-seconds"] * 1000 },
  };
}

/** Result of reading the command line: run with a config, or print help. */
/** Whether `--warm-pool` names any gateway: the pool's watches, permissions and template are needed only then. */
export function hasWarmPool(config: Config): boolean {
  return Object.keys(config["warm-pool"]).length > 0;
}

export type ConfigResult = { help: string } | { config: Config };

/**
 * Reads flags, then the environment, then defaults.
 * @throws Error with a message naming the flag and the rule; entrypoints print it and exit non-zero.
 */
export function loadConfig(args: string[], env: Record<string, string | undefined>): ConfigResult {
  const flags = parseFlags(args);
  if (flags === "help") return { help: usage() };

  const raw: Record<string, string> = {};
  for (const [name, option] of Object.entries(OPTIONS) as [OptionName, (typeof OPTIONS)[OptionName]][]) {
    raw[name] = flags[name] ?? env[option.env] ?? option.default;
  }
  const parsed = v.safeParse(ConfigSchema, raw);
  if (!parsed.success) {
    const issue = parsed.issues[0];
    const name = (issue.path?.[0]?.key ?? null) as OptionName | null;
    const where = name ? `--${name} (${OPTIONS[name].env})` : "options";
    throw new Error(`${where} ${issue.message}: got ${JSON.stringify(name ? raw[name] : raw)}`);
  }
  return { config: parsed.output };
}

/** `--name value` and `--name=value` for every option, `-h`/`--help`; anything else is an error naming it. */
function parseFlags(args: string[]): Partial<Record<OptionName, string>> | "help" {
  const flags: Partial<Record<OptionName, string>> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "-h" || arg === "--help") return "help";
    const [flag, inline] = arg.startsWith("--") && arg.includes("=") ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)] : [arg, undefined];
    const name = flag.slice(2) as OptionName;
    if (!flag.startsWith("--") || !Object.hasOwn(OPTIONS, name)) {
      throw new Error(flag.startsWith("-") ? `Unknown option '${flag}'` : `Unexpected argument '${flag}'`);
    }
    const value = inline ?? args[++i];
    if (value === undefined) throw new Error(`Option '${flag}' needs a value`);
    flags[name] = value;
  }
  return flags;
}

export function usage(): string {
  const lines = Object.entries(OPTIONS).map(([name, option]) =>
    `  --${name.padEnd(24)} ${option.help}\n  ${"".padEnd(26)} env ${option.env}${option.default ? `, default ${JSON.stringify(option.default)}` : ""}`
  );
  return [
    "podgateway-provisioner: turns io.podgateway.client.pending CloudEvents into client pods routed by pod-gateway.",
    "",
    "Usage: podgateway-provisioner [options]                       the service (pending, release, /clients)",
    "       podgateway-provisioner controller [options]            lifecycle events, finalizer, sweep; leader-elected",
    "       podgateway-provisioner controller --remove-finalizers  uninstall step: free every client pod, then exit",
    "",
    ...lines,
    "  -h, --help                 print this help",
    "",
    "Knative sets K_SINK (where result events are also sent, and client lifecycle events: ready, failed, deleted,",
    "with --client-lifecycle-events, in the controller) and K_CE_OVERRIDES (extensions added to them).",
  ].join("\n");
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
