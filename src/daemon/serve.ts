/** @module `calsync serve`: HTTP first, then the database (retried), then the scheduler. */
import type { Hono } from "hono";
import { delay } from "../core/delay.ts";
import { createChannelDeps } from "../channels/channel_deps.ts";
import type { Config } from "../config/config.ts";
import { withDeadline } from "../storage/client.ts";
import { migrate, MigrationError, pendingMigrations, readMigrations } from "../storage/migrate.ts";
import { createApp, createMetricsApp, type Readiness } from "../http/app.ts";
import { startHttpServer } from "../http/server.ts";
import { logger } from "../log/setup.ts";
import { createMetrics, type Metrics } from "../metrics/metrics.ts";
import { runMaintenance } from "../maintenance/maintenance_loop.ts";
import { type Scheduler, startScheduler } from "../scheduler/scheduler.ts";
import { backoffDelayMs } from "../failures/backoff.ts";
import { runSync } from "../sync/run_sync.ts";
import { type Database, openDatabase, probeDatabase } from "./open_database.ts";
import { onShutdownSignal } from "./signals.ts";
import { installProcessGuards } from "./process_guards.ts";
import { createSyncDeps } from "./wiring.ts";

const log = logger("serve");

/** Extra routes (webhooks) are mounted by this hook once the database is known. */
export type RouteInstaller = (
  app: Hono,
  deps: { database: () => Database | null; metrics: Metrics; config: Config },
) => void;

/** Runs the daemon until SIGTERM/SIGINT (or `signal`); resolves to the process exit code. */
export async function serve(
  config: Config,
  options: { signal?: AbortSignal; installRoutes?: RouteInstaller } = {},
): Promise<number> {
  const metrics = createMetrics();
  const shutdown = new AbortController();
  options.signal?.addEventListener("abort", () => shutdown.abort(), { once: true });
  const removeSignals = onShutdownSignal(() => shutdown.abort());
  const removeGuards = installProcessGuards(metrics);
  const migrations = await readMigrations();
  let database: Database | null = null;
  let migrated = false;

  async function readiness(): Promise<Readiness> {
    if (!database) return { ready: false, reason: "database not opened yet" };
    try {
      await probeDatabase(database, 2_000);
      metrics.databaseUp.set(1);
    } catch (error) {
      metrics.databaseUp.set(0);
      return { ready: false, reason: (error as Error).message };
    }
    if (!migrated) {
      const pending = await withDeadline(
        pendingMigrations(database.sql, migrations),
        2_000,
        "Check",
      )
        .catch(() => ["unknown"]);
      if (pending.length > 0) {
        return { ready: false, reason: `migrations not applied: ${pending.join(", ")}` };
      }
    }
    return { ready: true };
  }

  const app = createApp({
    metrics,
    readiness,
    maxBodyBytes: config.HTTP_MAX_BODY_BYTES,
    serveMetrics: config.METRICS_ADDR === undefined,
    routes: (app) => options.installRoutes?.(app, { database: () => database, metrics, config }),
  });
  const server = await startHttpServer(app, { hostname: config.HOST, port: config.PORT });
  // /metrics can live on its own (private) address so the webhook listener can be public.
  const metricsServer = config.METRICS_ADDR === undefined ? null : await startHttpServer(
    createMetricsApp(metrics),
    {
      hostname: config.METRICS_ADDR.slice(0, config.METRICS_ADDR.lastIndexOf(":")).replace(
        /^\[|\]$/g,
        "",
      ),
      port: Number(config.METRICS_ADDR.slice(config.METRICS_ADDR.lastIndexOf(":") + 1)),
      name: "metrics",
    },
  );

  let scheduler: Scheduler | null = null;
  let exitCode = 0;
  try {
    database = await openDatabase(config);
    for (let attempt = 1; !shutdown.signal.aborted; attempt++) {
      try {
        await probeDatabase(database, config.DB_CONNECT_TIMEOUT_MS + 1_000);
        const result = await migrate(database.sql, migrations);
        migrated = true;
        metrics.databaseUp.set(1);
        log.info("Database {database} ready; {applied} migrations applied", {
          database: database.description,
          applied: result.applied.length,
          migrations: result.applied,
        });
        break;
      } catch (error) {
        if (error instanceof MigrationError) throw error;
        metrics.databaseUp.set(0);
        const wait = backoffDelayMs({ attempt: Math.min(attempt, 20), baseMs: 500, maxMs: 30_000 });
        log.error("Database unavailable at start; retrying in {retry_in_ms} ms", {
          error,
          kind: "database",
          attempt,
          retry_in_ms: wait,
        });
        await delay(wait, shutdown.signal);
      }
    }
    if (!shutdown.signal.aborted) {
      const db = database;
      const syncDeps = createSyncDeps(config, db.sql, metrics);
      if (!config.CALSYNC_ENCRYPTION_KEY) {
        log.warn(
          "CALSYNC_ENCRYPTION_KEY is not set: new refresh tokens are stored unencrypted",
        );
      }
      // Channel work shares the sync engine's token cache; it needs CALSYNC_PUBLIC_URL.
      const channels = config.CALSYNC_PUBLIC_URL
        ? createChannelDeps(config, db.sql, metrics, { tokens: syncDeps.tokens })
        : undefined;
      scheduler = startScheduler({
        sql: db.sql,
        metrics,
        replicaId: `${Deno.hostname()}:${Deno.pid}`,
        concurrency: config.SYNC_CONCURRENCY,
        pollIntervalMs: config.SCHEDULER_POLL_INTERVAL_MS,
        leaseMs: config.SYNC_LEASE_MS,
        allowlist: config.SYNC_PROVIDER_ALLOWLIST,
        dbDeadlineMs: config.DB_STATEMENT_TIMEOUT_MS + 5_000,
        runSync: (connection, signal) => runSync(syncDeps, connection, signal),
        maintenance: {
          intervalMs: Math.min(config.SCHEDULER_POLL_INTERVAL_MS * 4, 30_000),
          run: (signal) =>
            runMaintenance(
              {
                sql: db.sql,
                metrics,
                dedupeTtlMs: config.WEBHOOK_DEDUPE_TTL,
                dbDeadlineMs: config.DB_STATEMENT_TIMEOUT_MS + 5_000,
                channels,
              },
              signal,
            ),
        },
      });
      log.info("Scheduler started", {
        concurrency: config.SYNC_CONCURRENCY,
        poll_interval_ms: config.SCHEDULER_POLL_INTERVAL_MS,
      });
      await new Promise<void>((resolve) => {
        if (shutdown.signal.aborted) return resolve();
        shutdown.signal.addEventListener("abort", () => resolve(), { once: true });
      });
    }
  } catch (error) {
    exitCode = 1;
    log.fatal("Cannot start: {error_message}", {
      error,
      error_message: (error as Error).message,
    });
  }

  const deadline = config.CALSYNC_SHUTDOWN_TIMEOUT_MS;
  const started = Date.now();
  await Promise.race([server.shutdown(), delay(deadline)]);
  await metricsServer?.shutdown();
  const left = Math.max(0, deadline - (Date.now() - started));
  await scheduler?.stop(left);
  await database?.close().catch((error) => log.error("Cannot close the database", { error }));
  removeSignals();
  removeGuards();
  log.info("Stopped", { exit_code: exitCode });
  return exitCode;
}
