import { Agent, fetch as undiciFetch } from "undici";
import type { Fetcher, TlsOptions } from "../kube/rest-client.ts";

/**
 * A TLS-configured `fetch` for Node (and Bun) on undici: one keep-alive pool per API server, no cap on
 * connections, so the API server's fairness (APF), not ours, limits throughput.
 */
export function undiciFetcher(tls: TlsOptions): Fetcher {
  const dispatcher = new Agent({
    connect: { ca: tls.ca, cert: tls.cert, key: tls.key, rejectUnauthorized: !tls.insecureSkipVerify },
    keepAliveTimeout: 30_000,
  });
  return (url, init) => undiciFetch(url, { ...init, dispatcher } as Parameters<typeof undiciFetch>[1]) as unknown as Promise<Response>;
}
