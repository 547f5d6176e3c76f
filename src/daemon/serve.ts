/** @module `calsync serve`: HTTP first, then the database (retried), then the scheduler. */
import type { Config } from "../config/config.ts";
import { delay } from "../core/delay.ts";
import { backoffDelayMs } from "../failures/backoff.ts";
import { createApp, createMetricsApp } from "../http/app.ts";
import { type HttpServer, startHttpServer } from "../http/server.ts";
import { logger } from "../log/setup.ts";
import { createMetrics, type Metrics } from "../metrics/metrics.ts";
import type { Scheduler } from "../scheduler/scheduler.ts";
import { migrate, MigrationError, readMigrations } from "../storage/migrate.ts";
import { mountWebhooks, WEBHOOK_BODY_LIMITS } from "../webhooks/routes.ts";
import { mountAdminApi } from "../api/admin_api.ts";
import { CALSYNC_VERSION } from "../core/version.ts";
import { adminApiModules } from "./api_modules.ts";
import { mountConnectFlow } from "../api/connect_routes.ts";
import { connectDepsOnDemand } from "./connect_wiring.ts";
import { mountConsole } from "../console/console.ts";
import { secretBoxFromConfig } from "./wiring.ts";
import { startEngine } from "./engine.ts";
import type { DeliveryLoop } from "../feed/delivery_loop.ts";
import { startFeedDelivery } from "./feed_wiring.ts";
import { type Database, openDatabase, probeDatabase } from "./open_database.ts";
import { installProcessGuards } from "./process_guards.ts";
import { checkReadiness, type ReadinessState } from "./readiness.ts";
import { onShutdownSignal } from "./signals.ts";

const log = logger("serve");

/** Runs the daemon until SIGTERM/SIGINT (or `signal`); resolves to the process exit code. */
export async function serve(
  config: Config,
  options: { signal?: AbortSignal } = {},
): Promise<number> {
  const metrics = createMetrics();
  const shutdown = new AbortController();
  options.signal?.addEventListener("abort", () => shutdown.abort(), { once: true });
  const removeSignals = onShutdownSignal(() => shutdown.abort());
  const removeGuards = installProcessGuards(metrics);
  const state: ReadinessState = {
    database: null,
    migrated: false,
    migrations: await readMigrations(),
  };
  const listeners = await startListeners(config, state, metrics);

  let scheduler: Scheduler | null = null;
  let delivery: DeliveryLoop | null = null;
  let exitCode = 0;
  try {
    state.database = await openDatabase(config);
    state.migrated = await migrateWhenReachable(config, state, metrics, shutdown.signal);
    if (!shutdown.signal.aborted) {
      scheduler = startEngine(config, state.database.sql, metrics);
      // Change feed delivery (#14): its own loop, so a slow subscriber never delays syncs.
      delivery = startFeedDelivery(config, state.database.sql, metrics);
      await abortion(shutdown.signal);
    }
  } catch (error) {
    exitCode = 1;
    log.fatal("Cannot start: {error_message}", { error, error_message: (error as Error).message });
  }
  await delivery?.stop(config.CALSYNC_SHUTDOWN_TIMEOUT_MS);
  await stopAll(config, listeners, scheduler, state.database);
  removeSignals();
  removeGuards();
  log.info("Stopped", { exit_code: exitCode });
  return exitCode;
}

/** The main listener (webhooks, health, and /metrics unless METRICS_ADDR moves it). */
async function startListeners(
  config: Config,
  state: ReadinessState,
  metrics: Metrics,
): Promise<HttpServer[]> {
  const readiness = () => checkReadiness(state, metrics);
  const bodyLimitFor = (path: string) =>
    Math.min(config.HTTP_MAX_BODY_BYTES, WEBHOOK_BODY_LIMITS[path] ?? Infinity);
  const app = createApp({
    metrics,
    readiness,
    maxBodyBytes: config.HTTP_MAX_BODY_BYTES,
    bodyLimitFor,
    serveMetrics: config.METRICS_ADDR === undefined,
    routes: (app) => {
      const sql = () => state.database?.sql ?? null;
      const secrets = secretBoxFromConfig(config);
      mountWebhooks(app, {
        sql,
        metrics,
        openSecret: (stored) => secrets.open(stored),
        deadlineMs: config.WEBHOOK_RESPONSE_DEADLINE_MS,
        queue: { maxConcurrent: config.DB_POOL_MAX, maxQueued: config.DB_QUEUE_MAX },
      });
      mountAdminApi(app, {
        token: config.CALSYNC_ADMIN_TOKEN ?? null,
        modules: adminApiModules({ config, metrics, sql }),
        metrics,
        version: CALSYNC_VERSION,
      });
      // The operator console, behind the same admin token.
      mountConsole(app, {
        token: config.CALSYNC_ADMIN_TOKEN ?? null,
        sql,
        metrics,
        sessionTtlMs: config.CALSYNC_CONSOLE_SESSION_TTL,
        secureCookies: config.CALSYNC_PUBLIC_URL?.startsWith("https:") ?? false,
        drillReportDir: config.CALSYNC_DRILL_REPORT_DIR ?? null,
        databaseDeadlineMs: config.DB_CONNECT_TIMEOUT_MS,
      });
      // The connect flow the user's browser follows (not under /api/v1).
      mountConnectFlow(app, {
        adminToken: config.CALSYNC_ADMIN_TOKEN ?? null,
        metrics,
        connect: connectDepsOnDemand(config, sql, metrics),
      });
    },
  });
  const limits = {
    headerTimeoutMs: config.HTTP_HEADER_TIMEOUT_MS,
    bodyTimeoutMs: config.HTTP_BODY_TIMEOUT_MS,
    idleTimeoutMs: config.HTTP_IDLE_TIMEOUT_MS,
    maxConnections: config.HTTP_MAX_CONNECTIONS,
    maxBytesInFlight: config.HTTP_MAX_BYTES_IN_FLIGHT,
    maxHeaderBytes: config.HTTP_MAX_HEADER_BYTES,
    bodyLimit: bodyLimitFor,
  };
  const servers = [
    await startHttpServer(app, { hostname: config.HOST, port: config.PORT, metrics, limits }),
  ];
  if (config.METRICS_ADDR !== undefined) {
    // /metrics (and /readyz with its reason) live on a private address; the webhook port is public.
    const split = config.METRICS_ADDR.lastIndexOf(":");
    servers.push(
      await startHttpServer(createMetricsApp(metrics, readiness), {
        hostname: config.METRICS_ADDR.slice(0, split).replace(/^\[|\]$/g, ""),
        port: Number(config.METRICS_ADDR.slice(split + 1)),
        name: "metrics",
        metrics,
        limits: { ...limits, bodyLimit: () => 0 },
      }),
    );
  }
  return servers;
}

/** Retries the database (logged, backed off) until it answers, then applies migrations. */
async function migrateWhenReachable(
  config: Config,
  state: ReadinessState,
  metrics: Metrics,
  signal: AbortSignal,
): Promise<boolean> {
  const database = state.database!;
  for (let attempt = 1; !signal.aborted; attempt++) {
    try {
      await probeDatabase(database, config.DB_CONNECT_TIMEOUT_MS + 1_000);
      const result = await migrate(database.sql, state.migrations);
      metrics.databaseUp.set(1);
      log.info("Database {database} ready; {applied} migrations applied", {
        database: database.description,
        applied: result.applied.length,
        migrations: result.applied,
      });
      return true;
    } catch (error) {
      if (error instanceof MigrationError) throw error;
      metrics.databaseUp.set(0);
      const wait = backoffDelayMs({
        attempt: Math.min(attempt, 20),
        baseMs: config.DB_RETRY_BASE_MS,
        maxMs: config.DB_RETRY_MAX_MS,
      });
      log.error("Database unavailable at start; retrying in {retry_in_ms} ms", {
        error,
        kind: "database",
        attempt,
        retry_in_ms: wait,
      });
      await delay(wait, signal);
    }
  }
  return false;
}

/** Stops listening, lets running syncs finish within the shutdown timeout, closes the pool. */
async function stopAll(
  config: Config,
  listeners: HttpServer[],
  scheduler: Scheduler | null,
  database: Database | null,
): Promise<void> {
  const deadline = config.CALSYNC_SHUTDOWN_TIMEOUT_MS;
  const started = Date.now();
  const timer = new AbortController();
  const [main, ...others] = listeners;
  await Promise.race([main.shutdown(), delay(deadline, timer.signal)]);
  timer.abort();
  for (const server of others) await server.shutdown();
  const left = Math.max(0, deadline - (Date.now() - started));
  await scheduler?.stop(left);
  await database?.close().catch((error) => log.error("Cannot close the database", { error }));
}

function abortion(signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    signal.addEventListener("abort", () => resolve(), { once: true });
  });
}
