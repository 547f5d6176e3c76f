/** @module Exponential backoff with jitter that never undercuts the provider's Retry-After. */

/** Inputs of one backoff computation. */
export type BackoffInput = {
  /** 1 for the first failure in a row, 2 for the second, ... */
  attempt: number;
  baseMs: number;
  maxMs: number;
  /** What the provider asked for, if anything. */
  retryAfterMs?: number | null;
  /** A number in [0, 1); injectable so tests are deterministic. */
  random?: number;
};

/**
 * Returns the delay before the next attempt: an exponential ceiling `base * 2^(attempt-1)`,
 * capped at `max`, with "equal jitter" (between half and all of it) so replicas spread out, and
 * never less than Retry-After, even when that exceeds `max`: the provider's word wins.
 */
export function backoffDelayMs(input: BackoffInput): number {
  const { attempt, baseMs, maxMs } = input;
  if (!Number.isInteger(attempt) || attempt < 1) {
    throw new RangeError(
      `Cannot compute backoff as 'attempt' must be a positive integer: current value is ${attempt}`,
    );
  }
  if (!(baseMs > 0) || !(maxMs >= baseMs)) {
    throw new RangeError(
      `Cannot compute backoff as 'baseMs' (${baseMs}) must be positive and at most 'maxMs' (${maxMs})`,
    );
  }
  const random = input.random ?? Math.random();
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt - 1, 52));
  const jittered = Math.round(ceiling / 2 + (ceiling / 2) * random);
  return Math.max(jittered, Math.ceil(input.retryAfterMs ?? 0));
}
