import type { Fetcher, TlsOptions } from "../kube/rest-client.ts";

/**
 * A TLS-configured `fetch` for the single executable: Bun's own fetch (native TLS, pooled keep-alive
 * connections, so no handshake per call) takes the CA and the client certificate as `tls`. npm's undici runs
 * under Bun too, but as JavaScript over Bun's node:tls emulation: measured several times the CPU per call.
 */
export function bunFetcher(tls: TlsOptions): Fetcher {
  const options = { ca: tls.ca, cert: tls.cert, key: tls.key, rejectUnauthorized: !tls.insecureSkipVerify };
  return (url, init) => fetch(url, { ...init, tls: options } as RequestInit);
}
