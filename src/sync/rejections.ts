/** @module Counting consecutive `provider_rejected` failures: back off, drop the cursor, disable; pure. */

/** What the previous attempts left: the claimed connection's error streak and last failure. */
export type RejectionHistory = {
  errorCount: number;
  lastError: Record<string, unknown> | null;
};

/** What to do with one more rejection. */
export type RejectionStep = {
  /** Consecutive rejections, this one included. */
  rejections: number;
  /** Drop the cursor so the next attempt is a full sync (the SYNC_MAX_REJECTIONS-th rejection). */
  fullSync: boolean;
  /** The full sync that followed was rejected too: give up. */
  disable: boolean;
};

/**
 * The n-th consecutive rejection (the streak is unbroken while `errorCount` > 0 and the last
 * failure was a rejection): before `maxRejections`, back off; at it, drop the cursor for one full
 * sync; a rejection of that full sync disables the connection.
 */
export function rejectionStep(history: RejectionHistory, maxRejections: number): RejectionStep {
  if (!Number.isInteger(maxRejections) || maxRejections < 1) {
    throw new RangeError(
      `Cannot count rejections as 'maxRejections' must be a positive integer: current value is ${maxRejections}`,
    );
  }
  const last = history.lastError;
  const streak = history.errorCount > 0 && last?.kind === "provider_rejected";
  const previous = streak && typeof last?.rejections === "number" ? last.rejections : 0;
  const rejections = streak ? Math.max(previous, 1) + 1 : 1;
  if (streak && last?.full_sync === true) return { rejections, fullSync: false, disable: true };
  return { rejections, fullSync: rejections >= maxRejections, disable: false };
}
