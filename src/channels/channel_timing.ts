/** @module When channels expire and when to renew them; pure arithmetic. */

/** Google's limit is undocumented; open-source code sees about 7 days, and Google may cut it. */
export const GOOGLE_CHANNEL_TTL_MS = 7 * 24 * 3_600_000;

/**
 * Graph documents 10,080 minutes for Outlook events today, but older documentation said 4,230
 * and some tenants still reject anything longer (wire formats §4.6), so stay under the smaller.
 */
export const GRAPH_SUBSCRIPTION_TTL_MS = 4_200 * 60_000;

/** Google keeps notifying on the old channel while the new one starts; stop it after this. */
export const GOOGLE_OVERLAP_MS = 5 * 60_000;

const MAX_RENEW_MARGIN_MS = 24 * 3_600_000;

/**
 * When to renew a channel that expires at `expiresAt`: a quarter of its remaining life early,
 * at most a day early, so a failed renewal has several backoff retries before the lapse.
 */
export function renewalTime(expiresAt: number, now: number): number {
  const life = Math.max(0, expiresAt - now);
  return expiresAt - Math.min(MAX_RENEW_MARGIN_MS, life / 4);
}

/** Parses a provider expiry: Google's int64 ms (string or number), Graph's ISO date-time. */
export function parseExpiry(value: unknown): number | null {
  if (typeof value === "number" && Number.isFinite(value)) return value;
  if (typeof value === "string" && /^\d{1,16}$/.test(value)) return Number(value);
  if (typeof value === "string") {
    // Graph writes seven fractional digits; Date.parse wants at most three.
    const ms = Date.parse(value.replace(/(\.\d{3})\d+/, "$1"));
    return Number.isNaN(ms) ? null : ms;
  }
  return null;
}
