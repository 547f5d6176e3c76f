/** @module Periodic housekeeping: the connection-state gauge, dedupe-key pruning, channels. */
import type { ChannelDeps } from "../channels/channel_deps.ts";
import { runChannelMaintenance } from "./channel_pass.ts";
import { pruneChangeFeed } from "./change_feed_retention.ts";
import { type Sql, withDeadline } from "../storage/client.ts";
import {
  countConnectionsByState,
  freshnessByProvider,
  scheduleUnscheduledConnections,
} from "../storage/connections.ts";
import { pruneDedupeKeys } from "../storage/webhook_dedupe_keys.ts";
import { logger } from "../log/setup.ts";
import type { Metrics } from "../metrics/metrics.ts";

const log = logger("maintenance");

/**
 * Refreshes gauges, prunes expired dedupe keys (a few small batches per call), then creates,
 * renews and stops push channels when `channels` is given.
 */
export async function runMaintenance(
  deps: {
    sql: Sql;
    metrics: Metrics;
    dedupeTtlMs: number;
    /** Client-side deadline of each database step (a half-open socket must not hang it). */
    dbDeadlineMs: number;
    channels?: ChannelDeps;
    /** The poll settings: freshness gauges and first schedules of pre-006 rows. */
    poll?: { shortMs: number; longMs: number; reconcileMs: number };
    /** Set once no unscheduled rows are left, so later passes skip the search. */
    backfill?: { done: boolean };
    /** CHANGE_FEED_RETENTION; unset: the feed is not pruned. */
    changeFeedRetentionMs?: number;
  },
  signal: AbortSignal,
): Promise<void> {
  let counts;
  try {
    counts = await withDeadline(countConnectionsByState(deps.sql), deps.dbDeadlineMs, "Gauges");
  } catch (error) {
    deps.metrics.databaseUp.set(0);
    throw error;
  }
  // Refreshed here too, not only by /readyz probes, so the gauge is right without a prober.
  deps.metrics.databaseUp.set(1);
  for (const [state, value] of Object.entries(counts)) {
    deps.metrics.connections.set({ state }, value);
  }
  if (deps.poll) await refreshFreshness(deps.sql, deps.metrics, deps.poll, deps.dbDeadlineMs);
  if (deps.poll && deps.backfill && !deps.backfill.done) {
    deps.backfill.done = await scheduleBatches(deps.sql, deps.poll, deps.dbDeadlineMs, signal);
  }
  let pruned = 0;
  for (let batch = 0; batch < 10 && !signal.aborted; batch++) {
    const removed = await withDeadline(
      pruneDedupeKeys(deps.sql, deps.dedupeTtlMs),
      deps.dbDeadlineMs,
      "Dedupe-key pruning",
    );
    pruned += removed;
    if (removed < 1_000) break;
  }
  if (pruned > 0) log.info("Pruned {pruned} expired webhook dedupe keys", { pruned });
  if (deps.changeFeedRetentionMs !== undefined && !signal.aborted) {
    await pruneChangeFeed({ ...deps, retentionMs: deps.changeFeedRetentionMs }, signal);
  }
  if (deps.channels && !signal.aborted) await runChannelMaintenance(deps.channels, signal);
}

async function refreshFreshness(
  sql: Sql,
  metrics: Metrics,
  poll: { shortMs: number; longMs: number },
  deadlineMs: number,
): Promise<void> {
  const rows = await withDeadline(freshnessByProvider(sql, poll), deadlineMs, "Freshness gauges");
  // A provider kind without active connections reports 0, not its last value.
  for (const provider of ["google", "microsoft"]) {
    const row = rows.find((r) => r.kind === provider);
    metrics.oldestSuccessAge.set({ provider }, row?.oldest_success_age_s ?? 0);
    metrics.oldestVerificationAge.set({ provider }, row?.oldest_verification_age_s ?? 0);
    metrics.staleConnections.set({ provider }, row?.stale ?? 0);
  }
}

/** Schedules pre-006 rows a few batches per pass; true once none are left. */
async function scheduleBatches(
  sql: Sql,
  poll: { shortMs: number; reconcileMs: number },
  deadlineMs: number,
  signal: AbortSignal,
): Promise<boolean> {
  for (let batch = 0; batch < 10 && !signal.aborted; batch++) {
    const scheduled = await withDeadline(
      scheduleUnscheduledConnections(sql, { pollMs: poll.shortMs, reconcileMs: poll.reconcileMs }),
      deadlineMs,
      "Poll scheduling",
    );
    if (scheduled > 0) {
      log.info("Scheduled the first poll of {scheduled} connections", { scheduled });
    }
    if (scheduled < 1_000) return true;
  }
  return false;
}
