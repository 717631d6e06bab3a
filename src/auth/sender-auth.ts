import type { MiddlewareHandler } from "hono";
import { isTransient } from "../kube/errors.ts";
import type { RestClient } from "../kube/rest-client.ts";
import { reviewToken } from "../kube/token-reviews.ts";
import { sha256Hex } from "../util/digest.ts";

/** Knative Eventing's OIDC sender identity check: which audience tokens must carry, and who may send. */
export interface SenderAuthOptions {
  kube: RestClient;
  /** The audience Knative mints tokens for when it delivers to this service (the addressable's `audience`). */
  audience: string;
  /** Usernames allowed to send, e.g. `system:serviceaccount:knative-eventing:...`; `*` for any authenticated one. */
  allowedSenders: string[];
  /** How long a reviewed token's verdict is reused; tokens live an hour, a minute keeps revocation prompt. */
  cacheMs?: number;
}

type Verdict = { ok: true; user: string } | { ok: false; status: 401 | 403; error: string };

const MAX_CACHED = 10_000;

/**
 * Verifies the `Authorization: Bearer` token of every event with the API server's TokenReview for our
 * audience, then checks the sender against the allow-list: 401 for no or bad token, 403 for an unlisted sender.
 * Verdicts are cached by token hash (never the token itself) so a busy sender costs one review a minute.
 */
export function senderAuth(options: SenderAuthOptions): MiddlewareHandler {
  const cacheMs = options.cacheMs ?? 60_000;
  const cache = new Map<string, { verdict: Verdict; until: number }>();
  const anyone = options.allowedSenders.includes("*");

  async function review(token: string): Promise<Verdict> {
    const status = await reviewToken(options.kube, token, [options.audience]);
    if (!status.authenticated || !status.audiences?.includes(options.audience)) {
      return { ok: false, status: 401, error: `token not valid for audience ${options.audience}` };
    }
    const user = status.user?.username ?? "";
    if (!anyone && !options.allowedSenders.includes(user)) {
      return { ok: false, status: 403, error: `sender ${user} is not allowed` };
    }
    return { ok: true, user };
  }

  return async (c, next) => {
    const header = c.req.header("authorization") ?? "";
    const token = /^Bearer\s+(\S+)$/i.exec(header)?.[1];
    if (!token) return c.json({ error: "missing bearer token (Knative OIDC sender identity)" }, 401, { "www-authenticate": "Bearer" });

    const key = sha256Hex(token);
    let entry = cache.get(key);
    if (!entry || entry.until < Date.now()) {
      let verdict: Verdict;
      try {
        verdict = await review(token);
      } catch (error) {
        if (isTransient(error)) return c.json({ error: "cannot verify the sender now; retry later" }, 503);
        throw error;
      }
      if (cache.size >= MAX_CACHED) cache.clear();
      entry = { verdict, until: Date.now() + cacheMs };
      cache.set(key, entry);
    }
    const { verdict } = entry;
    if (!verdict.ok) return c.json({ error: verdict.error }, verdict.status);
    await next();
  };
}
