/** @module Counts an adapter's provider requests against its quota and reports rate limits. */
import type { ProviderKind } from "../core/provider_kind.ts";

/** The subset of a gate the meter needs. */
export type QuotaMeter = {
  spend(kind: ProviderKind, requests: number): void;
  rateLimited(kind: ProviderKind): void;
};

const RATE_LIMIT_REASONS = /"(rateLimitExceeded|userRateLimitExceeded)"/;

/**
 * Wraps `inner` so each request spends one token of `kind`'s quota, and a 429, or a Google 403
 * whose reason is rateLimitExceeded/userRateLimitExceeded, slows the bucket for every connection.
 */
export function meteredFetch(
  meter: QuotaMeter,
  kind: ProviderKind,
  inner: typeof fetch,
): typeof fetch {
  return async (input, init) => {
    meter.spend(kind, 1);
    const response = await inner(input, init);
    if (response.status === 429) meter.rateLimited(kind);
    else if (response.status === 403) {
      // Only 403s are read twice (a clone), and they are rare; the adapter reads the original.
      const text = await response.clone().text().catch(() => "");
      if (RATE_LIMIT_REASONS.test(text)) meter.rateLimited(kind);
    }
    return response;
  };
}
