/** @module `/readyz`'s answer: the database answers and every migration is applied. */
import type { Readiness } from "../http/app.ts";
import type { Metrics } from "../metrics/metrics.ts";
import { withDeadline } from "../storage/client.ts";
import { type Migration, pendingMigrations } from "../storage/migrate.ts";
import { type Database, probeDatabase } from "./open_database.ts";

// A probe must answer well inside a load balancer's health-check timeout.
const PROBE_DEADLINE_MS = 2_000;

/** What the readiness check reads; the database is opened (and migrated) after HTTP starts. */
export type ReadinessState = {
  database: Database | null;
  migrated: boolean;
  migrations: Migration[];
};

/** Probes the database, refreshes `calsync_database_up`, and reports pending migrations. */
export async function checkReadiness(state: ReadinessState, metrics: Metrics): Promise<Readiness> {
  const { database } = state;
  if (!database) return { ready: false, reason: "database not opened yet" };
  try {
    await probeDatabase(database, PROBE_DEADLINE_MS);
    metrics.databaseUp.set(1);
  } catch (error) {
    metrics.databaseUp.set(0);
    return { ready: false, reason: (error as Error).message };
  }
  if (!state.migrated) {
    const pending = await withDeadline(
      pendingMigrations(database.sql, state.migrations),
      PROBE_DEADLINE_MS,
      "Check",
    ).catch(() => ["unknown"]);
    if (pending.length > 0) {
      return { ready: false, reason: `migrations not applied: ${pending.join(", ")}` };
    }
  }
  return { ready: true };
}
