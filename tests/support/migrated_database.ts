/** @module A fresh, migrated database with an open pool, for integration tests. */
import { openSql, type Sql } from "../../src/storage/client.ts";
import { migrate } from "../../src/storage/migrate.ts";
import { createTestDatabase } from "../../testkit/scratch_database.ts";

/** A migrated test database; `close()` ends the pool and drops the database. */
export type MigratedDatabase = {
  sql: Sql;
  url: string;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
};

/** Creates and migrates a database of its own for one test file or test. */
export async function createMigratedDatabase(prefix?: string): Promise<MigratedDatabase> {
  const database = await createTestDatabase(prefix);
  const sql = openSql(database.url, { max: 8, statementTimeoutMs: 10_000 });
  await migrate(sql);
  const close = async () => {
    await sql.end({ timeout: 1 });
    await database.drop();
  };
  return { sql, url: database.url, close, [Symbol.asyncDispose]: close };
}
