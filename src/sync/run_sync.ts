/** @module One sync of one claimed connection: fetch pages, then commit them with their cursor. */
import {
  type ClaimedConnection,
  completeSync,
  fenceLease,
  markReauthRequired,
  recordSyncFailure,
  releaseLease,
  storeCursor,
} from "../storage/connections.ts";
import type { MirroredEvent } from "../core/mirrored_event.ts";
import { deleteEvents, sweepEvents, upsertEvents } from "../storage/calendar_events.ts";
import { type Sql, withDeadline } from "../storage/client.ts";
import { inTransaction } from "../storage/transaction.ts";
import type { ProviderKind } from "../core/provider_kind.ts";
import { logger } from "../log/setup.ts";
import type { Metrics } from "../metrics/metrics.ts";
import type { ChangePage, EventChange, ProviderAdapter } from "../providers/adapter.ts";
import type { AccessTokens } from "../providers/access_tokens.ts";
import { backoffDelayMs } from "../failures/backoff.ts";
import { classifyThrown } from "../failures/classify.ts";
import { readCursor, startFullSync, type SyncCursor } from "./cursor.ts";
import { SyncFailure } from "../failures/failure.ts";

/** What a sync run needs; all of it passed in so tests use real databases and fake providers. */
export type SyncDeps = {
  sql: Sql;
  adapters: Record<ProviderKind, ProviderAdapter>;
  tokens: AccessTokens<ClaimedConnection>;
  metrics: Metrics;
  leaseMs: number;
  chunkEvents: number;
  backoffBaseMs: number;
  /** How soon a sync that failed on the database runs again (the lease is handed back). */
  dbRetryBaseMs: number;
  backoffMaxMs: number;
  /** Client-side deadline for one write transaction. */
  dbDeadlineMs: number;
  random?: () => number;
};

/** How a run ended. */
export type SyncOutcome =
  | { outcome: "success"; upserted: number; deleted: number; syncNeeded: boolean }
  | { outcome: "failure"; kind: string; backoffUntil: Date | null }
  | { outcome: "cancelled" };

const log = logger("sync");

/** Reduces a batch to the last change per event, so upserts and deletes never overlap. */
export function lastChangePerEvent(changes: readonly EventChange[]): {
  upserts: MirroredEvent[];
  deletes: string[];
} {
  const last = new Map<string, EventChange>();
  for (const change of changes) {
    const id = change.op === "upsert" ? change.event.externalEventId : change.externalEventId;
    last.delete(id);
    last.set(id, change);
  }
  const upserts: MirroredEvent[] = [];
  const deletes: string[] = [];
  for (const change of last.values()) {
    if (change.op === "upsert") upserts.push(change.event);
    else deletes.push(change.externalEventId);
  }
  return { upserts, deletes };
}

/** Runs one sync of a claimed connection and records its outcome; never throws. */
export async function runSync(
  deps: SyncDeps,
  connection: ClaimedConnection,
  signal: AbortSignal,
): Promise<SyncOutcome> {
  const provider = connection.providerKind;
  const started = performance.now();
  const endTimer = () =>
    deps.metrics.syncDuration.observe({ provider }, (performance.now() - started) / 1000);
  try {
    const result = await syncPages(deps, connection, signal);
    endTimer();
    deps.metrics.syncRuns.inc({ provider, outcome: "success" });
    log.info("Sync of connection {connection_id} succeeded", {
      connection_id: connection.id,
      provider,
      upserted: result.upserted,
      deleted: result.deleted,
      sync_needed: result.syncNeeded,
      duration_ms: Math.round(performance.now() - started),
    });
    return { outcome: "success", ...result };
  } catch (error) {
    endTimer();
    if (signal.aborted) {
      // Shutdown stopped this run: give the lease back at once, without counting a failure.
      await releaseLease(deps.sql, connection).catch(() => {});
      deps.metrics.syncRuns.inc({ provider, outcome: "cancelled" });
      log.info("Sync of connection {connection_id} stopped by shutdown; lease released", {
        connection_id: connection.id,
        provider,
      });
      return { outcome: "cancelled" };
    }
    return await recordFailure(deps, connection, classifyThrown(error));
  }
}

async function syncPages(
  deps: SyncDeps,
  connection: ClaimedConnection,
  signal: AbortSignal,
): Promise<{ upserted: number; deleted: number; syncNeeded: boolean }> {
  const adapter = deps.adapters[connection.providerKind];
  let cursor: SyncCursor = connection.fullSyncRequested
    ? startFullSync()
    : readCursor(connection.syncCursor);
  let restartedFullSync = false;
  let retriedAuth = false;
  let buffer: EventChange[] = [];
  let upserted = 0;
  let deleted = 0;
  const fetchAt = async (position: unknown): Promise<ChangePage> => {
    const accessToken = await deps.tokens.get(connection, signal);
    return await adapter.fetchPage({
      externalCalendarId: connection.externalCalendarId,
      position,
      accessToken,
      signal,
    });
  };
  // The page after a chunk is fetched while that chunk is written, so provider and database
  // round trips overlap; the transaction itself never waits on the provider.
  let prefetched: { position: unknown; page: Promise<ChangePage> } | null = null;
  for (;;) {
    let page;
    try {
      const ahead = prefetched !== null && prefetched.position === cursor.position
        ? prefetched.page
        : null;
      prefetched = null;
      page = await (ahead ?? fetchAt(cursor.position));
    } catch (error) {
      if (error instanceof SyncFailure && error.kind === "auth" && !retriedAuth) {
        // An access token can be revoked before it expires: refresh once, then give up.
        retriedAuth = true;
        deps.tokens.invalidate(connection.id);
        continue;
      }
      if (error instanceof SyncFailure && error.kind === "cursor_expired" && !restartedFullSync) {
        // The provider forgot our cursor: start a full sync now. Rows stay until its sweep.
        restartedFullSync = true;
        log.warn("Cursor of connection {connection_id} expired; running a full sync", {
          connection_id: connection.id,
          provider: connection.providerKind,
          status: error.status,
          provider_code: error.providerCode,
        });
        deps.metrics.syncFailures.inc({
          provider: connection.providerKind,
          reason: "cursor_expired",
        });
        cursor = startFullSync();
        buffer = [];
        continue;
      }
      throw error;
    }
    buffer.push(...page.changes);
    const next: SyncCursor = {
      position: page.position,
      fullSyncGeneration: page.done ? null : cursor.fullSyncGeneration,
    };
    if (page.done || buffer.length >= deps.chunkEvents) {
      if (!page.done) {
        const ahead = fetchAt(next.position);
        // Awaited by the next iteration; if this chunk's write fails, nobody awaits it.
        ahead.catch(() => {});
        prefetched = { position: next.position, page: ahead };
      }
      const { upserts, deletes } = lastChangePerEvent(buffer);
      const sweepGeneration = page.done ? cursor.fullSyncGeneration : null;
      if (page.done && upserts.length === 0 && deletes.length === 0 && sweepGeneration === null) {
        // Nothing to write (the common incremental sync): completeSync is fenced by the lease
        // on its own, so one statement replaces BEGIN, fence, complete and COMMIT.
        const { syncNeeded } = await withDeadline(
          completeSync(deps.sql, connection, next),
          deps.dbDeadlineMs,
          "Sync completion",
        );
        return { upserted, deleted, syncNeeded };
      }
      const committed = await withDeadline(
        inTransaction(deps.sql, async (tx) => {
          await fenceLease(tx, connection, deps.leaseMs);
          const up = await upsertEvents(tx, connection.id, upserts, cursor.fullSyncGeneration ?? 0);
          let down = await deleteEvents(tx, connection.id, deletes);
          if (sweepGeneration !== null) {
            down += await sweepEvents(tx, connection.id, sweepGeneration);
          }
          if (page.done) {
            const { syncNeeded } = await completeSync(tx, connection, next);
            return { up, down, syncNeeded };
          }
          await storeCursor(tx, connection.id, next);
          return { up, down, syncNeeded: true };
        }),
        deps.dbDeadlineMs,
        "Sync write transaction",
      );
      upserted += committed.up;
      deleted += committed.down;
      deps.metrics.eventsWritten.inc(
        { provider: connection.providerKind, op: "upsert" },
        committed.up,
      );
      deps.metrics.eventsWritten.inc(
        { provider: connection.providerKind, op: "delete" },
        committed.down,
      );
      buffer = [];
      if (page.done) return { upserted, deleted, syncNeeded: committed.syncNeeded };
    }
    cursor = next;
  }
}

async function recordFailure(
  deps: SyncDeps,
  connection: ClaimedConnection,
  failure: SyncFailure,
): Promise<SyncOutcome> {
  const provider = connection.providerKind;
  const attempt = connection.errorCount + 1;
  deps.metrics.syncFailures.inc({ provider, reason: failure.kind });
  deps.metrics.syncRuns.inc({ provider, outcome: "failure" });
  const fields = {
    connection_id: connection.id,
    provider,
    provider_name: connection.providerName,
    kind: failure.kind,
    status: failure.status ?? null,
    provider_code: failure.providerCode ?? null,
    attempt,
    error: failure.message,
  };
  if (failure.kind === "database" || failure.kind === "lease_lost") {
    // Nothing of this run was committed. Try to hand the lease back so the sync runs again as
    // soon as the database is back; if that fails too, the lease simply expires.
    const released = await releaseLease(deps.sql, connection, deps.dbRetryBaseMs).then(
      () => true,
      () => false,
    );
    log.error("Sync of connection {connection_id} failed: {kind}", {
      ...fields,
      backoff_until: null,
      lease_released: released,
    });
    return { outcome: "failure", kind: failure.kind, backoffUntil: null };
  }
  const lastError = {
    kind: failure.kind,
    status: failure.status ?? null,
    provider_code: failure.providerCode ?? null,
    message: failure.message,
    provider,
    at: new Date().toISOString(),
    attempt,
    retry_after_ms: failure.retryAfterMs ?? null,
  };
  try {
    if (failure.kind === "reauth_required") {
      await markReauthRequired(deps.sql, connection, lastError);
      log.error("Connection {connection_id} needs re-authorisation; syncing stopped", {
        ...fields,
        backoff_until: null,
      });
      return { outcome: "failure", kind: failure.kind, backoffUntil: null };
    }
    const delayMs = backoffDelayMs({
      attempt,
      baseMs: deps.backoffBaseMs,
      maxMs: deps.backoffMaxMs,
      retryAfterMs: failure.retryAfterMs,
      random: deps.random?.(),
    });
    const recorded = await recordSyncFailure(deps.sql, connection, {
      lastError: { ...lastError, backoff_ms: delayMs },
      delayMs,
      clearCursor: failure.kind === "cursor_expired",
    });
    log.error("Sync of connection {connection_id} failed: {kind}", {
      ...fields,
      backoff_ms: delayMs,
      backoff_until: recorded?.backoffUntil ?? null,
      lease_lost: recorded === null,
    });
    return { outcome: "failure", kind: failure.kind, backoffUntil: recorded?.backoffUntil ?? null };
  } catch (error) {
    deps.metrics.syncFailures.inc({ provider, reason: "database" });
    log.error("Cannot record the failed sync of connection {connection_id}: database error", {
      ...fields,
      backoff_until: null,
      record_error: error,
    });
    return { outcome: "failure", kind: "database", backoffUntil: null };
  }
}
