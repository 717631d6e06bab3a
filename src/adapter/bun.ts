import type { Fetcher, TlsOptions } from "../kube/rest-client.ts";

/**
 * Requests to the API server at once, at most: Bun's fetch speaks HTTP/1.1, one request per connection, so every
 * concurrent request beyond the pool's size opens a new TLS connection. A pod Knative has just started at c=64
 * paid 64 handshakes in its first events (client-go multiplexes over one HTTP/2 connection); 16 connections keep
 * the local API server's two cores busy all the same. More wait their turn, in order.
 */
const MAX_REQUESTS = 16;

/**
 * A TLS-configured `fetch` for the single executable: Bun's own fetch (native TLS, pooled keep-alive
 * connections, so no handshake per call) takes the CA and the client certificate as `tls`. npm's undici runs
 * under Bun too, but as JavaScript over Bun's node:tls emulation: measured several times the CPU per call.
 */
export function bunFetcher(tls: TlsOptions): Fetcher {
  const options = { ca: tls.ca, cert: tls.cert, key: tls.key, rejectUnauthorized: !tls.insecureSkipVerify };
  return limited((url, init) => fetch(url, { ...init, tls: options } as RequestInit), MAX_REQUESTS);
}

/** At most `max` calls of `fetcher` in flight (until their response headers); the others queue, first in first out. */
export function limited(fetcher: Fetcher, max: number): Fetcher {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async (url, init) => {
    if (active < max) active++;
    else await new Promise<void>((resolve) => waiting.push(resolve));
    try {
      return await fetcher(url, init);
    } finally {
      // The slot passes straight to the next in line, or frees.
      const next = waiting.shift();
      if (next) next();
      else active--;
    }
  };
}
