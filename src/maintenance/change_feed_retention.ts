/** @module Retention of the change feed: old changes go in small batches, unacked ones stay. */
import { logger } from "../log/setup.ts";
import type { Metrics } from "../metrics/metrics.ts";
import { feedBounds, pruneChanges } from "../storage/change_feed.ts";
import { type Sql, withDeadline } from "../storage/client.ts";
import { lowestActiveOffset } from "../storage/subscribers.ts";

const log = logger("maintenance");

/** What pruning needs; `now` is injectable for tests. */
export type RetentionDeps = {
  sql: Sql;
  metrics: Metrics;
  retentionMs: number;
  dbDeadlineMs: number;
  batchSize?: number;
  batches?: number;
  now?: () => number;
};

/**
 * Removes changes committed longer than CHANGE_FEED_RETENTION ago that every active subscriber
 * has acknowledged (paused subscribers do not hold the feed: they are told to re-read when
 * resumed past the pruned boundary). A few batches of 1,000 per pass keep each delete short.
 */
export async function pruneChangeFeed(deps: RetentionDeps, signal: AbortSignal): Promise<number> {
  const olderThan = new Date((deps.now?.() ?? Date.now()) - deps.retentionMs);
  const lowest = await withDeadline(lowestActiveOffset(deps.sql), deps.dbDeadlineMs, "Offsets");
  const keepAfter = lowest ?? (await feedBounds(deps.sql)).head;
  const batchSize = deps.batchSize ?? 1_000;
  let pruned = 0;
  for (let batch = 0; batch < (deps.batches ?? 10) && !signal.aborted; batch++) {
    const removed = await withDeadline(
      pruneChanges(deps.sql, { olderThan, keepAfter, batchSize }),
      deps.dbDeadlineMs,
      "Change feed pruning",
    );
    pruned += removed;
    if (removed < batchSize) break;
  }
  if (pruned > 0) {
    deps.metrics.changeFeedPruned.inc(pruned);
    log.info("Pruned {pruned} changes older than the retention", { pruned, keep_after: keepAfter });
  }
  return pruned;
}
