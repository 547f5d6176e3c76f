/** @module Opens the postgres.js pool with deadlines on every statement and transaction. */
import postgres from "postgres";
import { DatabaseDeadlineError } from "../core/errors.ts";

/** The postgres.js client type used everywhere in calsync. */
export type Sql = postgres.Sql<Record<string, never>>;

/** A transaction handle inside `sql.begin`. */
export type Tx = postgres.TransactionSql<Record<string, never>>;

/** Options for the pool; all timeouts are in milliseconds. */
export type SqlOptions = {
  max?: number;
  statementTimeoutMs?: number;
  connectTimeoutMs?: number;
  applicationName?: string;
};

/** Opens a pool whose statements and open transactions have server-side deadlines. */
export function openSql(url: string, options: SqlOptions = {}): Sql {
  const statementTimeout = options.statementTimeoutMs ?? 15_000;
  return postgres(url, {
    max: options.max ?? 10,
    connect_timeout: Math.ceil((options.connectTimeoutMs ?? 5_000) / 1000),
    idle_timeout: 60,
    max_lifetime: 60 * 30,
    // postgres.js delays reconnecting a closed connection by up to 20 s after repeated failures
    // (its retry count is shared by the pool and resets only on a successful connect). Queries
    // wait behind that delay: during an outage they hang until their deadline instead of failing
    // fast, and a database that is back stays unused for as long (found by the outage drill).
    // Our callers back off on their own, so a reconnect waits at most half a second.
    backoff: (retries: number) => Math.min(retries * 0.05, 0.5),
    onnotice: () => {},
    connection: {
      application_name: options.applicationName ?? "calsync",
      statement_timeout: statementTimeout,
      // A transaction left open by a vanished client must not hold row locks for long.
      idle_in_transaction_session_timeout: statementTimeout * 2,
      lock_timeout: statementTimeout,
    },
  }) as unknown as Sql;
}

/** Describes a database URL for messages: host, port and database name, never the password. */
export function describeDatabase(url: string): string {
  try {
    const parsed = new URL(url);
    const host = parsed.hostname || "localhost";
    const port = parsed.port || "5432";
    const name = parsed.pathname.replace(/^\//, "") || "postgres";
    return `${host}:${port}/${name}`;
  } catch {
    return "the database (unparseable URL)";
  }
}

/** Races a database promise against a client-side deadline: a half-open socket never hangs us. */
export async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new DatabaseDeadlineError(`${what} did not finish within ${ms} ms`)),
      ms,
    );
  });
  // The loser of the race may still reject later; that must not become an unhandled rejection.
  promise.catch(() => {});
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * True for a known postgres.js 3.4.9 race under Deno: a write it buffered in setImmediate reaches
 * a socket whose peer has sent FIN, and node:net's EPIPE for it is emitted after postgres.js has
 * handled the close and dropped its listeners, so it surfaces as an unhandled rejection. Nothing
 * is lost: that connection's queries have already failed with CONNECTION_CLOSED.
 */
export function isStraySocketWrite(reason: unknown): boolean {
  return reason instanceof Error &&
    reason.message === "This socket has been ended by the other party" &&
    (reason as { code?: unknown }).code === "EPIPE";
}

/** A database call outlived its client-side deadline. */
export { DatabaseDeadlineError };

/** The part of a postgres.js query that cancelling needs. */
export type CancellableQuery = { cancel(): unknown };

/**
 * Cancels `query` when `signal` aborts, once it has been handed to a connection: a running one
 * gets a cancel request on the server, one pipelined behind another is cancelled as it starts.
 * A query not yet handed to a connection is left alone: postgres.js 3.4.9 leaves a connection
 * stuck in "connecting" for good when the query it connects for is cancelled, and every later
 * query then waits behind it (found by tests/webhooks/late_commit_test.ts). Such a query stays
 * harmless: `WorkGate` bounds how many there are, and recording statements write nothing when
 * they start after their `notAfter`.
 */
export function cancelOnAbort<Q extends CancellableQuery & Promise<unknown>>(
  query: Q,
  signal: AbortSignal | undefined,
): Q {
  if (!signal) return query;
  const cancel = () => {
    if (!(query as { state?: unknown }).state) return;
    // The cancel request needs a connection of its own; during an outage it fails, harmlessly.
    Promise.resolve(query.cancel()).catch(() => {});
  };
  if (signal.aborted) cancel();
  else {
    signal.addEventListener("abort", cancel, { once: true });
    const forget = () => signal.removeEventListener("abort", cancel);
    query.then(forget, forget);
  }
  return query;
}
