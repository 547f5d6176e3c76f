/** @module `sql.begin` made safe against connections that die mid-transaction. */
import type { Sql, Tx } from "./client.ts";

// Codes postgres.js gives a query whose socket went away.
const CONNECTION_LOST = new Set([
  "CONNECTION_CLOSED",
  "CONNECTION_DESTROYED",
  "ECONNRESET",
  "EPIPE",
]);

function codeOf(error: unknown): string {
  return String((error as { code?: unknown } | null)?.code ?? "");
}

/**
 * Runs `fn` in one transaction. postgres.js 3.4.9 answers a connection lost inside `sql.begin`
 * by writing ROLLBACK to the dead socket from a setImmediate callback, which throws outside any
 * try/catch and kills the process (porsager/postgres#1208). Leaving the callback's promise
 * pending on such errors skips that ROLLBACK; `begin` still rejects at once with the connection
 * error, the server rolls back when it sees the socket close, and the pool reconnects.
 */
export function inTransaction<T>(sql: Sql, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return sql.begin((tx) =>
    fn(tx).catch((error) =>
      CONNECTION_LOST.has(codeOf(error)) ? new Promise<T>(() => {}) : Promise.reject(error)
    )
  ) as Promise<T>;
}
