/**
 * @module The provider quota as pure arithmetic: a token bucket whose rate a rate limit halves
 * and quiet time grows back (AIMD). PostgreSQL applies the same formulas in one statement
 * (src/storage/provider_health.ts); these are the reference and what the tests pin down.
 */

/** Quota settings for one provider project. */
export type QuotaSettings = {
  /** The configured quota (GOOGLE_QUOTA_PER_MINUTE). */
  perMinute: number;
  /** The bucket holds this many seconds of the rate, the burst a quiet bucket allows. */
  burstSeconds: number;
  /** The rate never falls below this share of the quota, so a recovery can be noticed. */
  floorRatio: number;
  /** Additive increase: share of the quota regained per quiet minute after a rate limit. */
  increasePerMinute: number;
};

/** The defaults calsync uses: 10 s of burst, a floor of 5 %, 10 % of the quota back per minute. */
export const QUOTA_SHAPE = { burstSeconds: 10, floorRatio: 0.05, increasePerMinute: 0.1 };

/** The AIMD state: the rate set by the last rate limit, and when it came (null: never). */
export type RateState = { basePerMinute: number | null; limitedAt: number | null };

/** The rate in force at `now`: the configured quota, or the halved one growing back linearly. */
export function effectiveRate(state: RateState, now: number, settings: QuotaSettings): number {
  if (state.basePerMinute === null || state.limitedAt === null) return settings.perMinute;
  const minutes = Math.max(0, now - state.limitedAt) / 60_000;
  const grown = state.basePerMinute + settings.increasePerMinute * settings.perMinute * minutes;
  return Math.min(settings.perMinute, grown);
}

/** Multiplicative decrease: the rate in force, halved, not below the floor. */
export function slowedRate(state: RateState, now: number, settings: QuotaSettings): RateState {
  const halved = effectiveRate(state, now, settings) / 2;
  return {
    basePerMinute: Math.max(settings.floorRatio * settings.perMinute, halved),
    limitedAt: now,
  };
}

/** A bucket's level at a time. */
export type Bucket = { tokens: number; at: number };

/** Refills the bucket to `now` at `perMinute`, capped at the burst. */
export function refill(
  bucket: Bucket,
  perMinute: number,
  now: number,
  burstSeconds: number,
): Bucket {
  const capacity = (perMinute / 60) * burstSeconds;
  const added = (Math.max(0, now - bucket.at) / 60_000) * perMinute;
  return { tokens: Math.min(capacity, bucket.tokens + added), at: now };
}

/** Takes up to `want` whole tokens; returns how many were granted and the bucket after. */
export function take(
  bucket: Bucket,
  want: number,
  perMinute: number,
  now: number,
  burstSeconds: number,
): { granted: number; bucket: Bucket } {
  const full = refill(bucket, perMinute, now, burstSeconds);
  const granted = Math.max(0, Math.min(want, Math.floor(full.tokens)));
  return { granted, bucket: { tokens: full.tokens - granted, at: now } };
}
