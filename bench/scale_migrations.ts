/**
 * @module The scale bench's migration timings: the big database is generated at an old schema,
 * then each later migration is applied with calsync's own migrator while a concurrent writer
 * updates random connections; the writer's slowest update is the lock the migration held.
 */
import { openSql, type Sql } from "../src/storage/client.ts";
import { migrate, readMigrations } from "../src/storage/migrate.ts";
import { maximum, percentile } from "./stats.ts";
import type { Log } from "./scale_generate.ts";

/** The schema the big database is generated at: v1 events, connections with their own tokens. */
export const BASE_VERSION = 3;

/** Applies migrations up to and including `version` (the migrator takes the list it is given). */
export async function migrateTo(sql: Sql, version: number): Promise<string[]> {
  const all = await readMigrations();
  const result = await migrate(sql, all.filter((m) => m.version <= version));
  return result.notes;
}

type WriterFigures = { updates: number; p50: number; p99: number; max: number };

/**
 * Updates one random connection at a time (as a webhook's sync request does, one row) until
 * stopped; the latencies say how long a migration made a single-row write wait.
 */
function startWriter(url: string, ids: readonly string[]) {
  // Its own connection, with no lock or statement timeout short enough to hide a long wait.
  const sql = openSql(url, { max: 1, statementTimeoutMs: 3_600_000, applicationName: "bench-w" });
  const latencies: number[] = [];
  let running = true;
  const done = (async () => {
    while (running) {
      const id = ids[Math.floor(Math.random() * ids.length)];
      const t0 = performance.now();
      await sql`update external_calendar_connections
        set sync_requested_seq = sync_requested_seq + 1, updated_at = now() where id = ${id}`;
      latencies.push(performance.now() - t0);
    }
  })();
  return {
    async stop(): Promise<WriterFigures> {
      running = false;
      await done;
      await sql.end({ timeout: 2 });
      const figures = {
        updates: latencies.length,
        p50: percentile(latencies, 50),
        p99: percentile(latencies, 99),
        max: maximum(latencies),
      };
      latencies.length = 0;
      return figures;
    },
  };
}

/**
 * Applies every migration after BASE_VERSION one at a time on the generated database, each
 * timed, with the writer running; one report line per migration.
 */
export async function timeMigrations(
  db: { sql: Sql; url: string },
  about: { connections: number; events: number; log: Log },
): Promise<string[]> {
  const ids = (await db.sql<{ id: string }[]>`
    select id from external_calendar_connections tablesample system (10) limit 10000`)
    .map((row) => row.id);
  const later = (await readMigrations()).filter((m) => m.version > BASE_VERSION);
  const lines = [
    `Migrations on ${about.connections.toLocaleString("en")} connections and ` +
    `${about.events.toLocaleString("en")} events (generated at schema ${BASE_VERSION}), each ` +
    `applied by the migrator while one client updates random connections, one row at a time:`,
    "| migration | seconds | writer updates | update p50 ms | update p99 ms | slowest update ms |",
    "| --- | --- | --- | --- | --- | --- |",
  ];
  for (const migration of later) {
    about.log(`scale: applying ${migration.name}`);
    const writer = startWriter(db.url, ids);
    const started = performance.now();
    const notes = await migrateTo(db.sql, migration.version);
    const seconds = (performance.now() - started) / 1000;
    const w = await writer.stop();
    lines.push(
      `| ${migration.name} | ${seconds.toFixed(1)} | ${w.updates} | ${w.p50.toFixed(2)} | ` +
        `${w.p99.toFixed(2)} | ${w.max.toFixed(0)} |`,
    );
    for (const note of notes) lines.push(`<!-- ${note} -->`);
  }
  return [...lines, ""];
}
