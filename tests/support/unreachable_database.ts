/** @module A database pool that can never connect, for tests of a database outage. */
import { openSql, type Sql } from "../../src/storage/client.ts";

/** A pool on a port where nothing listens: every statement fails to connect. */
export type UnreachableDatabase = { sql: Sql; [Symbol.asyncDispose](): Promise<void> };

/** Opens an UnreachableDatabase (connect attempts give up after 500 ms). */
export function unreachableDatabase(): UnreachableDatabase {
  const sql = openSql("postgres://postgres@127.0.0.1:9/nothing", {
    max: 1,
    connectTimeoutMs: 500,
  });
  return { sql, [Symbol.asyncDispose]: () => sql.end({ timeout: 0 }) };
}
