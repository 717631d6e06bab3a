// The Knative Serving stand-in (Serving does not run here yet): runs a Knative Service's revision as Serving would
// — a Deployment of its pod template on the real node and a Service in front — minus the queue-proxy, the
// activator and the autoscaler (one replica, no scale to zero), then publishes the Service's cluster address in
// the Knative Service's status, where Eventing's Trigger reads its subscriber URI. What a SinkBinding naming the
// Knative Service would inject (K_SINK, the OIDC token at /oidc) is taken from the SinkBinding's status.
//
//   node cluster/serving-standin.ts <namespace> <knative-service>     (KUBECTL and KUBECONFIG from cluster.sh env)
import { execFileSync } from "node:child_process";

type Obj = Record<string, any>;

const kubectl = (args: string[], input?: string): string =>
  execFileSync(process.env.KUBECTL ?? "kubectl", args, { encoding: "utf8", input, stdio: ["pipe", "pipe", "inherit"] });

/** The Knative-only fields of a revision's pod spec, which a Deployment's pod spec does not have. */
const KNATIVE_ONLY = ["containerConcurrency", "timeoutSeconds", "responseStartTimeoutSeconds", "idleTimeoutSeconds"];

/** The Deployment and Service Serving would run for the Knative Service, placed on the real node. */
export function revisionObjects(ksvc: Obj, binding: Obj | undefined): Obj[] {
  const { name, namespace } = ksvc.metadata;
  const template = structuredClone(ksvc.spec.template);
  const spec: Obj = Object.fromEntries(Object.entries(template.spec).filter(([k]) => !KNATIVE_ONLY.includes(k)));
  const labels = { "serving.knative.dev/service": name, "app.kubernetes.io/name": name };
  const container = spec.containers[0];
  const port = container.ports?.[0]?.containerPort ?? 8080;
  // the binding's webhook may already have put K_SINK into the Knative Service itself
  const injected = [
    { name: "PORT", value: String(port) },
    { name: "K_SERVICE", value: name },
    { name: "K_REVISION", value: `${name}-standin` },
    ...(binding?.status?.sinkUri ? [{ name: "K_SINK", value: binding.status.sinkUri }] : []),
  ];
  container.env = [...(container.env ?? []).filter((e: Obj) => !injected.some((i) => i.name === e.name)), ...injected];
  // Serving fills in the port of probes that name none
  for (const probe of [container.readinessProbe, container.livenessProbe]) if (probe?.httpGet) probe.httpGet.port ??= port;
  const oidcSecret = binding?.status?.oidcTokenSecretName;
  if (oidcSecret && !container.volumeMounts?.some((m: Obj) => m.mountPath === "/oidc")) {
    spec.volumes = [...(spec.volumes ?? []), { name: "oidc-token", secret: { secretName: oidcSecret } }];
    container.volumeMounts = [...(container.volumeMounts ?? []), { name: "oidc-token", mountPath: "/oidc", readOnly: true }];
  }
  spec.nodeSelector = { "podgateway.io/node": "real" };
  spec.tolerations = [{ key: "podgateway.io/node", operator: "Equal", value: "real", effect: "NoSchedule" }];
  return [
    {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: `${name}-standin`, namespace, labels },
      spec: {
        replicas: 1,
        selector: { matchLabels: labels },
        template: { metadata: { labels: { ...template.metadata?.labels, ...labels }, annotations: template.metadata?.annotations }, spec },
      },
    },
    {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name, namespace, labels },
      spec: { selector: labels, ports: [{ name: "http", port: 80, targetPort: port }] },
    },
  ];
}

/** Runs the revision, waits for it, and publishes its address in the Knative Service's status. */
export function serve(namespace: string, name: string): string {
  const ksvc = JSON.parse(kubectl(["get", "services.serving.knative.dev", name, "-n", namespace, "-o", "json"]));
  const bindings = JSON.parse(kubectl(["get", "sinkbindings.sources.knative.dev", "-n", namespace, "-o", "json"])).items as Obj[];
  const binding = bindings.find((b) => b.spec.subject.kind === "Service" && b.spec.subject.name === name);
  const objects = revisionObjects(ksvc, binding);
  kubectl(["apply", "--server-side", "--force-conflicts", "--field-manager=serving-standin", "-f", "-"],
    JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }));
  kubectl(["rollout", "status", "-n", namespace, `deployment/${name}-standin`, "--timeout=180s"]);
  const url = `http://${name}.${namespace}.svc.cluster.local`;
  const audience = ksvc.spec.template.spec.containers[0].env?.find((e: Obj) => e.name === "OIDC_AUDIENCE")?.value;
  const status = { url, address: { url, ...(audience ? { audience } : {}) }, conditions: [{ type: "Ready", status: "True" }] };
  kubectl(["patch", "services.serving.knative.dev", name, "-n", namespace, "--subresource=status", "--type=merge",
    "-p", JSON.stringify({ status })]);
  return url;
}

if (import.meta.main) {
  const [namespace, name] = process.argv.slice(2);
  if (!namespace || !name) throw new Error("usage: serving-standin.ts <namespace> <knative-service>");
  console.log(serve(namespace, name));
}
