/** @module An in-process console on a migrated scratch database, for the console's HTTP tests. */
import { mountConsole } from "../../src/console/console.ts";
import { createApp } from "../../src/http/app.ts";
import { createMetrics, type Metrics } from "../../src/metrics/metrics.ts";
import type { Sql } from "../../src/storage/client.ts";
import { insertProvider } from "../../src/storage/calendar_providers.ts";
import { insertConnection } from "../../src/storage/connections.ts";
import { createMigratedDatabase, type MigratedDatabase } from "../../testkit/scratch_database.ts";
import { serveApp } from "./serve_app.ts";

/** The admin token of the console tests. */
export const TOKEN = "console-token-for-tests-0123456789";

/** A served console, its database and metrics. */
export type ConsoleFixture = {
  url: string;
  db: MigratedDatabase;
  metrics: Metrics;
  /** What the console's `sql()` answers; null makes it behave as with the database down. */
  database: { sql: Sql | null };
  providerId: string;
  addConnection(calendar: string): Promise<string>;
  [Symbol.asyncDispose](): Promise<void>;
};

/** Serves the console (token TOKEN) on a fresh database with one Google provider. */
export async function consoleFixture(
  options: { drillReportDir?: string; sessionTtlMs?: number; now?: () => number } = {},
): Promise<ConsoleFixture> {
  const db = await createMigratedDatabase("console");
  const metrics = createMetrics();
  const database = { sql: db.sql as Sql | null };
  const app = createApp({
    metrics,
    readiness: () => Promise.resolve({ ready: true }),
    maxBodyBytes: 65_536,
    routes: (app) =>
      mountConsole(app, {
        token: TOKEN,
        sql: () => database.sql,
        metrics,
        sessionTtlMs: options.sessionTtlMs ?? 3_600_000,
        secureCookies: false,
        drillReportDir: options.drillReportDir ?? null,
        databaseDeadlineMs: 2_000,
        now: options.now,
      }),
  });
  const served = await serveApp(app);
  const { id: providerId } = await insertProvider(db.sql, {
    kind: "google",
    name: "google-main",
    allowlisted: true,
  });
  return {
    url: served.url,
    db,
    metrics,
    database,
    providerId,
    async addConnection(calendar) {
      return (await insertConnection(db.sql, {
        providerId,
        externalCalendarId: calendar,
        refreshToken: "rt-secret-refresh-token",
        accountLabel: null,
      })).id;
    },
    async [Symbol.asyncDispose]() {
      await served.close();
      await db.close();
    },
  };
}
