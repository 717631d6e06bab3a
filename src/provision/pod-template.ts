/**
 * The operator's client pod template (`--client-pod-template`): a Pod or PodTemplate manifest, YAML or JSON.
 * The operator owns everything in it; the provisioner owns only what makes a pod a routed client (see
 * {@link ownedFieldProblems}), and a template that sets any of that is refused at start-up.
 */
import type { ObjectMeta } from "kubernetes-types/meta/v1";
import type { Pod, PodSpec } from "kubernetes-types/core/v1";
import * as v from "valibot";
import { isTransient, KubeApiError } from "../kube/errors.ts";
import type { RestClient } from "../kube/rest-client.ts";
import { dryRunCreatePod } from "../kube/pods.ts";
import { parseYaml } from "../util/yaml.ts";
import { type ClientPodSettings, clientPod, LABEL_COMPONENT, LABEL_MANAGED_BY, LABEL_NAME, type PodTemplate } from "./client-pod.ts";

const StringMap = v.record(v.string(), v.string("must be a string"));
const Metadata = v.looseObject({ labels: v.optional(StringMap), annotations: v.optional(StringMap) });
const Spec = v.looseObject({
  containers: v.pipe(v.array(v.looseObject({}), "must be a list of containers"), v.minLength(1, "must name at least one container")),
});
const Template = v.looseObject({ metadata: v.optional(Metadata), spec: Spec });

/** The two manifests accepted: a Pod (its metadata and spec) or a PodTemplate (its `template`). */
const Manifest = v.variant("kind", [
  v.looseObject({ apiVersion: v.literal("v1", "apiVersion must be v1"), kind: v.literal("Pod"), metadata: v.optional(Metadata), spec: Spec }),
  v.looseObject({ apiVersion: v.literal("v1", "apiVersion must be v1"), kind: v.literal("PodTemplate"), template: Template }),
], "kind must be Pod or PodTemplate");

/**
 * Reads a template's text (YAML, of which JSON is a part).
 * @throws Error naming the problem: not one YAML document, not a Pod/PodTemplate, malformed metadata or spec.
 */
export async function parsePodTemplate(text: string): Promise<PodTemplate> {
  let document: unknown;
  try {
    document = await parseYaml(text);
  } catch (error) {
    throw new Error(`not one YAML or JSON document: ${(error as Error).message.split("\n")[0]}`);
  }
  const parsed = v.safeParse(Manifest, document);
  if (!parsed.success) {
    const issue = parsed.issues[0];
    const path = v.getDotPath(issue);
    throw new Error(path && !issue.message.startsWith(path) ? `${path}: ${issue.message}` : issue.message);
  }
  const manifest = parsed.output;
  const { metadata, spec } = manifest.kind === "Pod" ? manifest : manifest.template;
  return { metadata: (metadata ?? {}) as ObjectMeta, spec: spec as unknown as PodSpec };
}

const OWNED_PREFIX = "podgateway.io/";

/**
 * What the template sets that is the provisioner's: the pod's name and namespace, the gateway label and
 * annotation, the managed-by labels, `podgateway.io/` labels, annotations and finalizers, every scheduling
 * gate (only ours is ever lifted), and `activeDeadlineSeconds` when `--client-max-lifetime-seconds` sets it.
 */
export function ownedFieldProblems(template: PodTemplate, settings: Omit<ClientPodSettings, "namespace">): string[] {
  const problems: string[] = [];
  const { metadata, spec } = template;
  for (const field of ["name", "generateName", "namespace"] as const) {
    if (metadata[field] !== undefined) problems.push(`metadata.${field} is set by the provisioner (one pod per event, in --client-namespace)`);
  }
  const ownedLabels = new Set([LABEL_NAME, LABEL_MANAGED_BY, LABEL_COMPONENT, settings.gatewayLabelKey]);
  for (const key of Object.keys(metadata.labels ?? {})) {
    if (ownedLabels.has(key) || key.startsWith(OWNED_PREFIX)) problems.push(`metadata.labels["${key}"] is set by the provisioner`);
  }
  for (const key of Object.keys(metadata.annotations ?? {})) {
    if (key === settings.gatewayAnnotationKey || key.startsWith(OWNED_PREFIX)) problems.push(`metadata.annotations["${key}"] is set by the provisioner`);
  }
  for (const finalizer of metadata.finalizers ?? []) {
    if (finalizer.startsWith(OWNED_PREFIX)) problems.push(`metadata.finalizers: ${finalizer} is the provisioner's`);
  }
  if (spec.schedulingGates !== undefined) {
    problems.push("spec.schedulingGates is set by the provisioner: it gates every client pod until the gateway's webhook is seen, and lifts only its own gate");
  }
  if (settings.activeDeadlineSeconds && spec.activeDeadlineSeconds !== undefined) {
    problems.push("spec.activeDeadlineSeconds is set by --client-max-lifetime-seconds; set one or the other");
  }
  return problems;
}

/**
 * Asks the API server to create the pod of an imagined request with the template (`dryRun=All`, strict field
 * validation; admission webhooks run as well): what it would refuse for every event is refused at start-up.
 * @throws Error with the API server's reason; a transient failure (5xx, 429, unreachable) is its `cause`.
 */
export async function checkOnServer(kube: RestClient, settings: ClientPodSettings, gatewayName: string, file = "template"): Promise<Pod> {
  const pod = clientPod(settings, { source: "podgateway-provisioner/start-up", id: crypto.randomUUID(), gatewayName });
  try {
    return await dryRunCreatePod(kube, settings.namespace, pod);
  } catch (error) {
    const causes = error instanceof KubeApiError ? (error.status.details?.causes ?? []).map((cause) => cause.message).filter(Boolean) : [];
    const detail = causes.length > 0 && !causes.every((cause) => (error as Error).message.includes(cause!)) ? ` (${causes.join("; ")})` : "";
    const what = isTransient(error) ? "could not be checked with the API server (dry run), retry" : "the API server would refuse client pods made from it";
    throw new Error(`${flag(file)}: ${what}: ${(error as Error).message}${detail}`, { cause: error });
  }
}

/**
 * The template of `--client-pod-template`, read and checked against what the provisioner owns.
 * @throws Error naming the flag, the file and every problem found.
 */
export async function loadPodTemplate(file: string, text: string, settings: Omit<ClientPodSettings, "namespace">): Promise<PodTemplate> {
  const where = flag(file);
  let template: PodTemplate;
  try {
    template = await parsePodTemplate(text);
  } catch (error) {
    throw new Error(`${where}: ${(error as Error).message}`);
  }
  const problems = ownedFieldProblems(template, settings);
  if (problems.length > 0) throw new Error(`${where}: ${problems.join("; ")}`);
  return template;
}

const flag = (file: string) => `--client-pod-template (CLIENT_POD_TEMPLATE) ${file}`;
