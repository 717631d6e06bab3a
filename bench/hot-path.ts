/**
 * The service's own CPU per event, without the network or the API server: the real app and REST client in
 * process, over a fetch that answers like an API server with a routed pod (create) and the released pod (patch).
 * A quick loop for trying hot-path changes; `npm run bench` measures the real thing.
 *
 *   node bench/hot-path.ts [--events=20000] [--concurrency=64] [--mode=binary|structured]
 *   bun bench/hot-path.ts …   deno run -A bench/hot-path.ts …   (add --cpu-prof on Node for a profile)
 */
import { parseArgs } from "node:util";
import { createApp } from "../src/app.ts";
import { HttpRestClient } from "../src/kube/http-client.ts";
import { Metrics } from "../src/observability/metrics.ts";
import { jsonLogger, setLogOutput } from "../src/observability/log.ts";

const { values } = parseArgs({
  options: {
    events: { type: "string", default: "20000" },
    concurrency: { type: "string", default: "64" },
    mode: { type: "string", default: "binary" },
  },
});
const events = Number(values.events);
const concurrency = Number(values.concurrency);

/** An API server in a function: the pod as admission leaves it (routed, gated), then without the gate. */
const apiServer = async (url: string, init: RequestInit): Promise<Response> => {
  if (init.method === "POST") {
    const pod = JSON.parse(init.body as string);
    pod.metadata.uid = "u";
    pod.metadata.creationTimestamp = "2026-01-01T00:00:00Z";
    pod.spec.initContainers = [{ name: "gateway-init", image: "g" }];
    return new Response(JSON.stringify(pod), { status: 201, headers: { "content-type": "application/json" } });
  }
  const name = url.slice(url.lastIndexOf("/") + 1);
  const pod = { metadata: { name, namespace: "clients", uid: "u", creationTimestamp: "2026-01-01T00:00:00Z" }, spec: {} };
  return new Response(JSON.stringify(pod), { status: 200, headers: { "content-type": "application/json" } });
};

let written = 0;
setLogOutput((text) => (written += text.length));
const app = createApp({
  provisioner: {
    kube: new HttpRestClient({ server: "https://127.0.0.1:6443", fetcher: apiServer, token: () => "t" }),
    routingInitContainer: "gateway-init",
    pod: { namespace: "clients", image: "alpine/curl", command: ["sleep", "infinity"], gatewayLabelKey: "setGateway", gatewayAnnotationKey: "setGateway" },
  },
  stamp: { source: "/podgateway/provisioner", extensions: {} },
  metrics: new Metrics(),
  log: jsonLogger,
  ready: () => Promise.resolve(true),
  maxInFlight: 1024,
  maxBodyBytes: 1024 * 1024,
});

const request = (i: number): Request => {
  const id = `hot-${i}`;
  if (values.mode === "structured") {
    return new Request("http://127.0.0.1/", {
      method: "POST",
      headers: { "content-type": "application/cloudevents+json" },
      body: JSON.stringify({ specversion: "1.0", id, source: "/bench", type: "io.podgateway.client.pending", datacontenttype: "application/json", data: { gateway_name: "foo" } }),
    });
  }
  return new Request("http://127.0.0.1/", {
    method: "POST",
    headers: { "ce-specversion": "1.0", "ce-id": id, "ce-source": "/bench", "ce-type": "io.podgateway.client.pending", "content-type": "application/json" },
    body: '{"gateway_name":"foo"}',
  });
};

async function run(count: number): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count) {
      const response = await app.fetch(request(next++));
      if (response.status !== 200) throw new Error(`status ${response.status}: ${await response.text()}`);
      await response.text();
    }
  }));
}

await run(Math.min(2000, events)); // warm-up: JIT
const cpu = process.cpuUsage();
const wall = performance.now();
await run(events);
const used = process.cpuUsage(cpu);
const runtime = process.versions.bun ? `bun ${process.versions.bun}` : process.versions.deno ? `deno ${process.versions.deno}` : `node ${process.version}`;
console.log(JSON.stringify({
  runtime,
  mode: values.mode,
  events,
  concurrency,
  cpu_us_per_event: Math.round((used.user + used.system) / events),
  wall_us_per_event: Math.round((performance.now() - wall) * 1000 / events),
  log_bytes: written,
}));
