import type { Fetcher, TlsOptions } from "../kube/rest-client.ts";

/** A TLS-configured `fetch` for Deno: `Deno.createHttpClient` carries the CA and the client certificate. */
export function denoFetcher(tls: TlsOptions): Fetcher {
  if (tls.insecureSkipVerify) {
    throw new Error("insecure-skip-tls-verify is not supported on Deno; give the cluster's CA instead");
  }
  const client = Deno.createHttpClient({
    caCerts: tls.ca ? [tls.ca] : undefined,
    ...(tls.cert && tls.key ? { cert: tls.cert, key: tls.key } : {}),
  });
  return (url, init) => fetch(url, { ...init, client } as RequestInit);
}
