/** @module Reads a sync's pages: the next page fetched ahead, one token refresh, one restart. */
import { SyncFailure } from "../failures/failure.ts";
import { logger } from "../log/setup.ts";
import type { ChangePage } from "../providers/adapter.ts";
import type { ClaimedConnection } from "../storage/connections.ts";
import { type SyncWindow, windowAt } from "../core/sync_window.ts";
import { startFullSync, type SyncCursor } from "./cursor.ts";
import type { SyncDeps } from "./sync_deps.ts";

const log = logger("sync");

/** A page, and whether the provider forgot the cursor so the run restarted as a full sync. */
export type PageRead = { page: ChangePage; cursor: RunCursor; restarted: boolean };

/** A cursor inside a run: it always has the round's window. */
export type RunCursor = SyncCursor & { window: SyncWindow };

/** The clock of `deps` (tests inject one). */
export function clockOf(deps: SyncDeps): () => number {
  return deps.now ?? Date.now;
}

function runCursor(cursor: SyncCursor, deps: SyncDeps): RunCursor {
  return {
    ...cursor,
    window: cursor.window ??
      windowAt(clockOf(deps)(), deps.window.pastDays, deps.window.futureDays),
  };
}

/** Reads pages of one run; `prefetch` starts the next page while the caller writes this one. */
export type PageReader = {
  read(cursor: RunCursor): Promise<PageRead>;
  prefetch(position: unknown, window: SyncWindow): void;
};

/** Creates the reader of one sync run of `connection`. */
export function createPageReader(
  deps: SyncDeps,
  connection: ClaimedConnection,
  signal: AbortSignal,
): PageReader {
  const adapter = deps.adapters[connection.providerKind];
  const now = clockOf(deps);
  let retriedAuth = false;
  let restartedFullSync = false;
  let prefetched: { position: unknown; page: Promise<ChangePage> } | null = null;
  // Masters fetched by this run; a restarted full sync may reuse them (same run, same minute).
  const seriesSeen = new Map<string, unknown>();

  async function fetchAt(position: unknown, window: SyncWindow): Promise<ChangePage> {
    const accessToken = await deps.tokens.get(connection, signal);
    return await adapter.fetchPage({
      externalCalendarId: connection.externalCalendarId,
      position,
      window,
      seriesSeen,
      accessToken,
      signal,
    });
  }

  async function read(cursor: RunCursor): Promise<PageRead> {
    for (;;) {
      const ahead = prefetched !== null && prefetched.position === cursor.position
        ? prefetched.page
        : null;
      prefetched = null;
      try {
        const page = await (ahead ?? fetchAt(cursor.position, cursor.window));
        return { page, cursor, restarted: false };
      } catch (error) {
        if (error instanceof SyncFailure && error.kind === "auth" && !retriedAuth) {
          // An access token can be revoked before it expires: refresh once, then give up.
          retriedAuth = true;
          deps.tokens.invalidate(connection.id);
          continue;
        }
        if (
          !(error instanceof SyncFailure) || error.kind !== "cursor_expired" || restartedFullSync
        ) {
          throw error;
        }
        // The provider forgot our cursor: start a full sync now. Rows stay until its sweep.
        restartedFullSync = true;
        noteCursorExpired(deps, connection, error);
        const restarted = await read(runCursor(startFullSync(now(), deps.window), deps));
        return { ...restarted, restarted: true };
      }
    }
  }

  return {
    read,
    prefetch(position, window) {
      const page = fetchAt(position, window);
      // Awaited by the next read; if the current chunk's write fails, nobody awaits it.
      page.catch(() => {});
      prefetched = { position, page };
    },
  };
}

function noteCursorExpired(deps: SyncDeps, connection: ClaimedConnection, error: SyncFailure) {
  log.warn("Cursor of connection {connection_id} expired; running a full sync", {
    connection_id: connection.id,
    provider: connection.providerKind,
    status: error.status,
    provider_code: error.providerCode,
  });
  deps.metrics.syncFailures.inc({ provider: connection.providerKind, reason: "cursor_expired" });
}
