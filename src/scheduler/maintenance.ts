/** @module Periodic housekeeping: the connection-state gauge and dedupe-key pruning. */
import type { Sql } from "../db/client.ts";
import { countConnectionsByState } from "../db/connections.ts";
import { pruneDedupeKeys } from "../db/dedupe_keys.ts";
import { logger } from "../log/setup.ts";
import type { Metrics } from "../metrics.ts";

const log = logger("maintenance");

/** Refreshes gauges and prunes expired dedupe keys, a few small batches per call. */
export async function runMaintenance(
  deps: { sql: Sql; metrics: Metrics; dedupeTtlMs: number },
  signal: AbortSignal,
): Promise<void> {
  const counts = await countConnectionsByState(deps.sql);
  for (const [state, value] of Object.entries(counts)) {
    deps.metrics.connections.set({ state }, value);
  }
  let pruned = 0;
  for (let batch = 0; batch < 10 && !signal.aborted; batch++) {
    const removed = await pruneDedupeKeys(deps.sql, deps.dedupeTtlMs);
    pruned += removed;
    if (removed < 1_000) break;
  }
  if (pruned > 0) log.info("Pruned {pruned} expired webhook dedupe keys", { pruned });
}
