/** @module The mass-deletion guard's verdict: delete, or hold the deletions for an operator; pure. */

/** SYNC_DELETE_GUARD_PERCENT and SYNC_DELETE_GUARD_MIN. */
export type GuardSettings = { percent: number; min: number };

/** What a write is about to delete, against what the connection has. */
export type DeletionPlan = {
  /** Mirrored rows the write would remove. */
  deleting: number;
  /** Mirrored rows of the connection before the write. */
  total: number;
  /**
   * At the end of a full listing: how many rows it listed (matched by generation); null for
   * incremental writes.
   */
  listed: number | null;
  /** An earlier chunk of this run already held its deletions. */
  holding: boolean;
};

/** Why deletions are held. */
export type HoldReason = "threshold" | "empty_listing" | "run_holding";

/**
 * Holds when the write would delete more than `percent` of the rows and more than `min` rows,
 * when a full listing came back empty for a calendar that had rows (a provider fault looks like
 * that), or when the run is already holding (one decision per run).
 */
export function guardVerdict(plan: DeletionPlan, settings: GuardSettings): HoldReason | null {
  if (plan.deleting === 0) return null;
  if (plan.holding) return "run_holding";
  if (plan.listed === 0 && plan.total > 0) return "empty_listing";
  if (plan.deleting > settings.min && plan.deleting * 100 > settings.percent * plan.total) {
    return "threshold";
  }
  return null;
}
