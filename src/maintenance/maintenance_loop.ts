/** @module Periodic housekeeping: the connection-state gauge, dedupe-key pruning, channels. */
import type { ChannelDeps } from "../channels/channel_deps.ts";
import { runChannelMaintenance } from "./channel_pass.ts";
import { type Sql, withDeadline } from "../storage/client.ts";
import { countConnectionsByState } from "../storage/connections.ts";
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
  if (deps.channels && !signal.aborted) await runChannelMaintenance(deps.channels, signal);
}
