/** authentication.k8s.io TokenReview: the API server says whether a token is valid, for which audiences, and whose. */
import type { RestClient } from "./rest-client.ts";

/** What a TokenReview answers (its `status`). */
export interface TokenReviewStatus {
  authenticated?: boolean;
  audiences?: string[];
  user?: { username?: string };
  error?: string;
}

/** Reviews `token` for `audiences`. */
export async function reviewToken(kube: RestClient, token: string, audiences: string[], signal?: AbortSignal): Promise<TokenReviewStatus> {
  const answer = await kube.performRequest<{ status?: TokenReviewStatus }>({
    method: "POST",
    path: "/apis/authentication.k8s.io/v1/tokenreviews",
    body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: { token, audiences } },
    signal,
  });
  return answer.status ?? {};
}
