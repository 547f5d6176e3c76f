/** @module Starts the sync engine on an open database: scheduler, syncs and maintenance. */
import type { Config } from "../config/config.ts";
import { logger } from "../log/setup.ts";
import { runMaintenance } from "../maintenance/maintenance_loop.ts";
import type { Metrics } from "../metrics/metrics.ts";
import { type Scheduler, startScheduler } from "../scheduler/scheduler.ts";
import type { Sql } from "../storage/client.ts";
import { runSync } from "../sync/run_sync.ts";
import { createChannelDeps, createSyncDeps, databaseDeadlineMs } from "./wiring.ts";

const log = logger("serve");

/** Starts the scheduler with syncs and maintenance wired from the config. */
export function startEngine(config: Config, sql: Sql, metrics: Metrics): Scheduler {
  const syncDeps = createSyncDeps(config, sql, metrics);
  if (!config.CALSYNC_ENCRYPTION_KEY) {
    log.warn("CALSYNC_ENCRYPTION_KEY is not set: new refresh tokens are stored unencrypted");
  }
  // Channel work shares the sync engine's token cache; it needs CALSYNC_PUBLIC_URL.
  const channels = config.CALSYNC_PUBLIC_URL
    ? createChannelDeps(config, sql, metrics, { tokens: syncDeps.tokens })
    : undefined;
  const backfill = { done: false };
  const scheduler = startScheduler({
    sql,
    metrics,
    replicaId: `${Deno.hostname()}:${Deno.pid}`,
    concurrency: config.SYNC_CONCURRENCY,
    pollIntervalMs: config.SCHEDULER_POLL_INTERVAL_MS,
    leaseMs: config.SYNC_LEASE_MS,
    allowlist: config.SYNC_PROVIDER_ALLOWLIST,
    dbDeadlineMs: databaseDeadlineMs(config),
    dbRetryBaseMs: config.DB_RETRY_BASE_MS,
    dbRetryMaxMs: config.DB_RETRY_MAX_MS,
    runSync: (connection, signal) => runSync(syncDeps, connection, signal),
    maintenance: {
      intervalMs: Math.min(config.SCHEDULER_POLL_INTERVAL_MS * 4, 30_000),
      run: (signal) =>
        runMaintenance({
          sql,
          metrics,
          dedupeTtlMs: config.WEBHOOK_DEDUPE_TTL,
          dbDeadlineMs: databaseDeadlineMs(config),
          channels,
          poll: {
            shortMs: config.SYNC_POLL_INTERVAL,
            longMs: config.SYNC_POLL_INTERVAL_WITH_PUSH,
            reconcileMs: config.SYNC_RECONCILE_INTERVAL,
          },
          backfill,
          changeFeedRetentionMs: config.CHANGE_FEED_RETENTION,
        }, signal),
    },
  });
  log.info("Scheduler started", {
    concurrency: config.SYNC_CONCURRENCY,
    poll_interval_ms: config.SCHEDULER_POLL_INTERVAL_MS,
  });
  return scheduler;
}
