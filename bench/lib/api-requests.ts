/**
 * The API server's own count of requests it served (`apiserver_request_total` in its /metrics), summed by verb
 * and resource, e.g. "POST pods", "PATCH pods", "POST pods/binding": the difference of two snapshots shows which
 * calls happened in between. Used by the benchmark and by e2e tests that must prove a call was never made.
 */
export function apiRequestCounts(metrics: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const line of metrics.split("\n")) {
    if (!line.startsWith("apiserver_request_total{")) continue;
    const labels = line.slice(line.indexOf("{") + 1, line.lastIndexOf("}"));
    const label = (name: string) => new RegExp(`(?:^|,)${name}="([^"]*)"`).exec(labels)?.[1] ?? "";
    const resource = label("resource");
    if (!resource) continue;
    const subresource = label("subresource");
    const key = `${label("verb")} ${resource}${subresource ? `/${subresource}` : ""}`;
    counts[key] = (counts[key] ?? 0) + Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return counts;
}
