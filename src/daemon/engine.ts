/** @module Starts the sync engine on an open database: scheduler, syncs and maintenance. */
import { type Config, laneConcurrency } from "../config/config.ts";
import type { ProviderKind } from "../core/provider_kind.ts";
import type { BreakerSettings } from "../lanes/circuit_breaker.ts";
import { mailboxSlots, mailboxSyncs } from "../lanes/mailbox_slots.ts";
import { meteredFetch } from "../lanes/metered_fetch.ts";
import { createProviderGate } from "../lanes/provider_gate.ts";
import { QUOTA_SHAPE } from "../lanes/token_bucket.ts";
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
  const replicaId = `${Deno.hostname()}:${Deno.pid}`;
  const kinds: ProviderKind[] = ["google", "microsoft"];
  const gate = createProviderGate({
    sql,
    metrics,
    owner: replicaId,
    kinds,
    breaker: breakerSettings(config),
    quota: { google: { perMinute: config.GOOGLE_QUOTA_PER_MINUTE, ...QUOTA_SHAPE } },
    probeLeaseMs: config.SYNC_LEASE_MS,
  });
  const meter = (kind: ProviderKind, f: typeof fetch) => meteredFetch(gate, kind, f);
  const syncDeps = { ...createSyncDeps(config, sql, metrics, { meter }), providerGate: gate };
  const mailboxes = mailboxSlots(config.MICROSOFT_MAILBOX_CONCURRENCY);
  const perMailbox = mailboxSyncs(config.MICROSOFT_MAILBOX_CONCURRENCY);
  const lanes = kinds.map((kind) => ({
    kind,
    size: laneConcurrency(config, kind),
    perAccount: kind === "microsoft" ? perMailbox : undefined,
  }));
  if (!config.CALSYNC_ENCRYPTION_KEY) {
    log.warn("CALSYNC_ENCRYPTION_KEY is not set: new refresh tokens are stored unencrypted");
  }
  // Channel work shares the sync engine's token cache, quota and breaker; it needs
  // CALSYNC_PUBLIC_URL.
  const channels = config.CALSYNC_PUBLIC_URL
    ? createChannelDeps(config, sql, metrics, { tokens: syncDeps.tokens, meter, gate })
    : undefined;
  const backfill = { done: false };
  const scheduler = startScheduler({
    sql,
    metrics,
    replicaId,
    concurrency: lanes.reduce((sum, lane) => sum + lane.size, 0),
    lanes,
    gate,
    pollIntervalMs: config.SCHEDULER_POLL_INTERVAL_MS,
    leaseMs: config.SYNC_LEASE_MS,
    allowlist: config.SYNC_PROVIDER_ALLOWLIST,
    dbDeadlineMs: databaseDeadlineMs(config),
    dbRetryBaseMs: config.DB_RETRY_BASE_MS,
    dbRetryMaxMs: config.DB_RETRY_MAX_MS,
    runSync: (connection, signal) =>
      connection.providerKind === "microsoft"
        ? mailboxes.run(
          connection.accountId ??
            `${connection.providerId}/${connection.accountLabel ?? connection.id}`,
          () => runSync(syncDeps, connection, signal),
        )
        : runSync(syncDeps, connection, signal),
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
    lanes: Object.fromEntries(lanes.map((lane) => [lane.kind, lane.size])),
    poll_interval_ms: config.SCHEDULER_POLL_INTERVAL_MS,
  });
  return scheduler;
}

/** The breaker's thresholds from SYNC_BREAKER_*. */
export function breakerSettings(config: Config): BreakerSettings {
  return {
    windowMs: config.SYNC_BREAKER_WINDOW,
    failureRatio: config.SYNC_BREAKER_FAILURE_PERCENT / 100,
    minRequests: config.SYNC_BREAKER_MIN_REQUESTS,
    minConnections: config.SYNC_BREAKER_MIN_CONNECTIONS,
    probeIntervalMs: config.SYNC_BREAKER_PROBE_INTERVAL,
    probeMaxMs: config.SYNC_BREAKER_PROBE_MAX,
    drainStepMs: config.SYNC_BREAKER_DRAIN_STEP,
  };
}
