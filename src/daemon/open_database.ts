/** @module Opens the configured database, or starts the embedded one when none is configured. */
import type { Config } from "../config/config.ts";
import { describeDatabase, openSql, type Sql, withDeadline } from "../storage/client.ts";
import { logger } from "../log/setup.ts";
import { DatabaseUnavailableError, EmbeddedDatabaseUnavailableError } from "../core/errors.ts";

/** An open database: the pool plus how to close it (and stop the embedded server, if any). */
export type Database = {
  sql: Sql;
  url: string;
  /** `host:port/name`, safe for messages. */
  description: string;
  embedded: boolean;
  close(): Promise<void>;
};

/** Why the database could not be opened or reached (defined with every error in core). */
export { DatabaseUnavailableError, EmbeddedDatabaseUnavailableError };

const log = logger("db");

/**
 * Opens the pool for `DATABASE_URL`, or starts the embedded PostgreSQL under `CALSYNC_DATA_DIR`
 * when it is unset. Does not wait for the database to answer; see `probeDatabase`.
 */
export async function openDatabase(
  config: Config,
  options: { applicationName?: string; max?: number } = {},
): Promise<Database> {
  let url = config.DATABASE_URL;
  let stopEmbedded: (() => Promise<void>) | null = null;
  if (!url) {
    log.warn(
      "DATABASE_URL is not set: starting the embedded PostgreSQL in {data_dir}. It is for trying " +
        "calsync out, tests and drills, not for production.",
      { data_dir: config.CALSYNC_DATA_DIR },
    );
    const { startEmbeddedPostgres } = await import("../storage/embedded.ts");
    let server;
    try {
      server = await startEmbeddedPostgres({
        dataDir: config.CALSYNC_DATA_DIR,
        log: (message, fields) => log.info(message, fields ?? {}),
      });
    } catch (error) {
      if (lacksPermission(error)) {
        // The compiled binary is not granted what the embedded server needs, by design.
        throw new EmbeddedDatabaseUnavailableError(
          "DATABASE_URL is not set and this build may not start the embedded PostgreSQL " +
            `(${(error as Error).message}); set DATABASE_URL to a PostgreSQL 14+ server`,
          error,
        );
      }
      throw error;
    }
    url = server.url;
    stopEmbedded = () => server.stop();
  }
  const sql = openSql(url, {
    max: options.max ?? config.DB_POOL_MAX,
    statementTimeoutMs: config.DB_STATEMENT_TIMEOUT_MS,
    connectTimeoutMs: config.DB_CONNECT_TIMEOUT_MS,
    applicationName: options.applicationName,
  });
  return {
    sql,
    url,
    description: describeDatabase(url),
    embedded: stopEmbedded !== null,
    async close() {
      await sql.end({ timeout: 2 });
      if (stopEmbedded) await stopEmbedded();
    },
  };
}

/** True when `error`, or any cause of it, is a permission the process was not granted. */
function lacksPermission(error: unknown): boolean {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    // Reading the binaries package is refused first now that --allow-read names its paths; the
    // embedded module reports that inside its own error's message.
    if (e instanceof Deno.errors.NotCapable || /Requires \w+ access/.test(e.message)) return true;
  }
  return false;
}

/** Runs `select 1` under a deadline; throws DatabaseUnavailableError naming the database. */
export async function probeDatabase(database: Database, deadlineMs: number): Promise<void> {
  try {
    await withDeadline(database.sql`select 1`, deadlineMs, "Database probe");
  } catch (error) {
    throw new DatabaseUnavailableError(database.description, error);
  }
}
