/** @module One sync of one claimed connection: fetch pages, then commit them with their cursor. */
import { classifyThrown } from "../failures/classify.ts";
import { logger } from "../log/setup.ts";
import { type ClaimedConnection, releaseLease } from "../storage/connections.ts";
import type { EventChange } from "../providers/adapter.ts";
import type { MirroredSeries } from "../core/mirrored_event.ts";
import { cursorForRun, readCursor, startFullSync } from "./cursor.ts";
import { lastChangePerEvent } from "./last_change.ts";
import { clockOf, createPageReader, type PageReader, type RunCursor } from "./page_reader.ts";
import { recordFailure } from "./record_failure.ts";
import { reportCommitted } from "./report_run.ts";
import { createSyncRun, type SyncRun } from "./sync_run.ts";
import type { SyncDeps, SyncOutcome } from "./sync_deps.ts";
import { type ChunkResult, writeChunk } from "./write_chunk.ts";

export type { SyncDeps, SyncOutcome } from "./sync_deps.ts";
export { lastChangePerEvent } from "./last_change.ts";

const log = logger("sync");

/** Runs one sync of a claimed connection and records its outcome; never throws. */
export async function runSync(
  deps: SyncDeps,
  connection: ClaimedConnection,
  signal: AbortSignal,
): Promise<SyncOutcome> {
  const provider = connection.providerKind;
  const started = performance.now();
  const endTimer = () => {
    const seconds = (performance.now() - started) / 1000;
    deps.metrics.syncDuration.observe({ provider }, seconds);
    return seconds;
  };
  try {
    const result = await syncPages(deps, connection, signal);
    // The run ends when its last commit gave the lease back; the gate's bookkeeping comes after,
    // and a line dated later would overlap the next run of this connection that another lane
    // may already have claimed.
    const seconds = endTimer();
    const committedAt = new Date(clockOf(deps)()).toISOString();
    await deps.providerGate?.settle(connection, "success");
    deps.metrics.syncRuns.inc({ provider, outcome: "success" });
    log.info("Sync of connection {connection_id} succeeded", {
      connection_id: connection.id,
      provider,
      upserted: result.upserted,
      deleted: result.deleted,
      sync_needed: result.syncNeeded,
      duration_ms: Math.round(seconds * 1000),
      committed_at: committedAt,
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

/** The cursor a run starts from: the stored one, or a new round when the window moved. */
function startingCursor(deps: SyncDeps, connection: ClaimedConnection, now: number) {
  const stored = connection.fullSyncRequested
    ? startFullSync(now, deps.window)
    : readCursor(connection.syncCursor, now, deps.window);
  const start = cursorForRun(stored, now, deps.window);
  if (start.rolled) {
    log.info("Window of connection {connection_id} moves forward; starting a new round", {
      connection_id: connection.id,
      provider: connection.providerKind,
      window_start: start.cursor.window.start,
      window_end: start.cursor.window.end,
    });
  }
  return start;
}

/** Reads every page from the cursor on and commits them chunk by chunk. */
async function syncPages(
  deps: SyncDeps,
  connection: ClaimedConnection,
  signal: AbortSignal,
): Promise<ChunkResult> {
  const reader = createPageReader(deps, connection, signal);
  const now = clockOf(deps)();
  const start = startingCursor(deps, connection, now);
  // A reconciliation first brings the mirror up to date through the cursor, then lists
  // everything: a difference left after that is drift, not news. One in the middle of a full
  // sync (or of a round the moved window just started) simply finishes it; the reconciliation
  // stays due for the next run.
  const reconciling = connection.reconcileDue && !connection.fullSyncRequested &&
    !start.rolled && start.cursor.fullSyncGeneration === null;
  const listing = reconciling || start.cursor.fullSyncGeneration !== null;
  const sync = () => syncFrom(deps, connection, reader, { start: start.cursor, reconciling, now });
  return listing && deps.listingSlots ? await deps.listingSlots.run("listing", sync) : await sync();
}

/** Runs the catch-up of a reconciliation, if any, and the round from the starting cursor. */
async function syncFrom(
  deps: SyncDeps,
  connection: ClaimedConnection,
  reader: PageReader,
  options: { start: RunCursor; reconciling: boolean; now: number },
): Promise<ChunkResult> {
  const { reconciling, now } = options;
  const run = createSyncRun(reconciling, now);
  const total = { upserted: 0, deleted: 0 };
  let cursor: RunCursor = options.start;
  if (reconciling) {
    const caughtUp = await readAndWrite(deps, connection, reader, { cursor, run, complete: false });
    total.upserted += caughtUp.upserted;
    total.deleted += caughtUp.deleted;
    run.reconciling = true;
    cursor = cursorForRun(startFullSync(now, deps.window), now, deps.window).cursor;
  }
  const result = await readAndWrite(deps, connection, reader, { cursor, run, complete: true });
  return {
    upserted: total.upserted + result.upserted,
    deleted: total.deleted + result.deleted,
    syncNeeded: result.syncNeeded,
  };
}

/**
 * Reads pages from `cursor` to the end of the round and writes them chunk by chunk. With
 * `complete` the last chunk completes the sync; without, it only stores the cursor it reached.
 */
async function readAndWrite(
  deps: SyncDeps,
  connection: ClaimedConnection,
  reader: PageReader,
  options: { cursor: RunCursor; run: SyncRun; complete: boolean },
): Promise<ChunkResult> {
  const { run } = options;
  // The catch-up of a reconciliation is an ordinary incremental sync.
  run.reconciling = run.reconciling && options.complete;
  let cursor = options.cursor;
  let buffer: EventChange[] = [];
  let series = new Map<string, MirroredSeries>();
  const total = { upserted: 0, deleted: 0 };
  for (;;) {
    const read = await reader.read(cursor);
    if (read.restarted) {
      buffer = [];
      series = new Map();
    }
    cursor = read.cursor;
    const { page } = read;
    buffer.push(...page.changes);
    for (const master of page.series) series.set(master.seriesId, master);
    // Only incremental reads bring news a notification should have announced.
    if (cursor.fullSyncGeneration === null) run.changes += page.changes.length;
    const next: RunCursor = {
      position: page.position,
      fullSyncGeneration: page.done ? null : cursor.fullSyncGeneration,
      window: cursor.window,
    };
    if (page.done || buffer.length >= deps.chunkEvents) {
      // The next page is fetched while this chunk is written, so provider and database round
      // trips overlap; the transaction itself never waits on the provider.
      if (!page.done) reader.prefetch(next.position, next.window);
      const written = await writeChunk(deps, connection, {
        ...lastChangePerEvent(buffer),
        series: [...series.values()],
        cursor,
        next,
        done: page.done && options.complete,
        run,
      });
      total.upserted += written.upserted;
      total.deleted += written.deleted;
      countWritten(deps, connection, written);
      reportCommitted(deps, connection, run);
      buffer = [];
      series = new Map();
      if (page.done) return { ...total, syncNeeded: written.syncNeeded };
    }
    cursor = next;
  }
}

function countWritten(deps: SyncDeps, connection: ClaimedConnection, written: ChunkResult) {
  const provider = connection.providerKind;
  deps.metrics.eventsWritten.inc({ provider, op: "upsert" }, written.upserted);
  deps.metrics.eventsWritten.inc({ provider, op: "delete" }, written.deleted);
}
