/** The app in process, for tests of the HTTP boundary: defaults for everything, a given Kubernetes client. */
import { type AppOptions, createApp } from "../../src/app.ts";
import type { RestClient } from "../../src/kube/rest-client.ts";
import { Metrics } from "../../src/observability/metrics.ts";

export function testApp(kube: RestClient, overrides: Partial<AppOptions> = {}) {
  return createApp({
    provisioner: {
      kube,
      routingInitContainer: "gateway-init",
      pod: { namespace: "clients", image: "i", command: ["c"], gatewayLabelKey: "setGateway", gatewayAnnotationKey: "setGateway" },
    },
    stamp: { source: "/test", extensions: {} },
    metrics: new Metrics(),
    log: () => {},
    ready: () => Promise.resolve(true),
    maxInFlight: 64,
    maxBodyBytes: 1024 * 1024,
    ...overrides,
  });
}
