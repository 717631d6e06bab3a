/**
 * The start-up permission check: asks the API server (SelfSubjectAccessReview, which every authenticated
 * identity may create) whether this identity may do each thing its enabled features need, so a missing RBAC
 * rule stops the process at start naming the rule, instead of failing events one by one later.
 */
import { isTransient } from "./errors.ts";
import type { RestClient } from "./rest-client.ts";

/** One thing the process will do: a verb on a resource, in a namespace (none: cluster-scoped). */
export interface Permission {
  verb: string;
  group: string;
  resource: string;
  namespace?: string;
  /** Which feature needs it, for the error message. */
  for: string;
}

/** `create coordination.k8s.io/leases in namespace x`: the words of an RBAC rule. */
export function describePermission(permission: Permission): string {
  const resource = permission.group ? `${permission.group}/${permission.resource}` : permission.resource;
  return `${permission.verb} ${resource} ${permission.namespace ? `in namespace ${permission.namespace}` : "(cluster-wide)"} (for ${permission.for})`;
}

/**
 * The permissions of `needs` this identity lacks (all asked at once).
 * @throws when the API server cannot answer (transient trouble, or reviews themselves refused).
 */
export async function missingPermissions(kube: RestClient, needs: Permission[], signal?: AbortSignal): Promise<Permission[]> {
  const answers = await Promise.all(needs.map((permission) =>
    kube.performRequest<{ status?: { allowed?: boolean } }>({
      method: "POST",
      path: "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
      body: {
        apiVersion: "authorization.k8s.io/v1",
        kind: "SelfSubjectAccessReview",
        spec: { resourceAttributes: { verb: permission.verb, group: permission.group, resource: permission.resource, namespace: permission.namespace } },
      },
      signal,
    })
  ));
  return needs.filter((_, index) => answers[index]?.status?.allowed !== true);
}

/** Pods in one namespace, with these verbs. */
export const podPermissions = (namespace: string, verbs: string[], feature: string): Permission[] =>
  verbs.map((verb) => ({ verb, group: "", resource: "pods", namespace, for: feature }));

/** Leases in one namespace, with these verbs. */
export const leasePermissions = (namespace: string, verbs: string[], feature: string): Permission[] =>
  verbs.map((verb) => ({ verb, group: "coordination.k8s.io", resource: "leases", namespace, for: feature }));

/**
 * Runs the check and turns a missing permission into a start-up error. When the API server cannot be asked
 * (down right now), the process starts anyway: it would answer every event 503 until it is back.
 * @throws Error naming every missing verb, resource and namespace.
 */
export async function requirePermissions(kube: RestClient, needs: Permission[], warn: (message: string) => void): Promise<void> {
  let missing: Permission[];
  try {
    missing = await missingPermissions(kube, needs);
  } catch (error) {
    if (!isTransient(error)) throw error;
    warn(`permission check skipped: the API server could not be asked (${(error as Error).message})`);
    return;
  }
  if (missing.length > 0) {
    throw new Error(`missing RBAC permission${missing.length > 1 ? "s" : ""}: ${missing.map(describePermission).join("; ")}`);
  }
}
