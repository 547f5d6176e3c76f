/** @module Commits one chunk of a sync with the cursor that resumes after it, fenced by the lease. */
import type { MirroredEvent, MirroredSeries } from "../core/mirrored_event.ts";
import { upsertEvents, upsertSeries } from "../storage/calendar_events.ts";
import { withDeadline } from "../storage/client.ts";
import {
  type ClaimedConnection,
  completeSync,
  completeSyncs,
  type Completion,
  fenceLease,
  storeCursor,
} from "../storage/connections.ts";
import { inTransaction } from "../storage/transaction.ts";
import { LeaseLostError } from "../core/errors.ts";
import type { SyncCursor } from "./cursor.ts";
import { applyDeletions, compareWithMirror } from "./guarded_write.ts";
import { completionSchedule } from "./poll_schedule.ts";
import type { SyncDeps } from "./sync_deps.ts";
import type { SyncRun } from "./sync_run.ts";

/** One chunk: what to write, the cursor it was read at and the one that follows it. */
export type Chunk = {
  upserts: MirroredEvent[];
  deletes: string[];
  /** Masters of the series whose occurrences this chunk holds. */
  series: MirroredSeries[];
  cursor: SyncCursor;
  next: SyncCursor;
  /** The last chunk of the run: `next` is the new sync cursor and the run completes. */
  done: boolean;
  /** The run's reconciliation, guard and drift state. */
  run: SyncRun;
};

/** What a committed chunk wrote; `syncNeeded` says a request arrived during the run. */
export type ChunkResult = { upserted: number; deleted: number; syncNeeded: boolean };

/** Writes a chunk in one transaction (or one statement when there is nothing to write). */
export async function writeChunk(
  deps: SyncDeps,
  connection: ClaimedConnection,
  chunk: Chunk,
): Promise<ChunkResult> {
  const sweepGeneration = chunk.done ? chunk.cursor.fullSyncGeneration : null;
  const empty = chunk.upserts.length === 0 && chunk.deletes.length === 0 &&
    chunk.series.length === 0;
  if (chunk.done && empty && sweepGeneration === null) {
    // Nothing to write (the common incremental sync): completeSync is fenced by the lease on its
    // own, so one statement replaces BEGIN, fence, complete and COMMIT, and runs finishing
    // together share it.
    const completion = {
      connection,
      cursor: chunk.next,
      schedule: schedule(deps, connection, chunk.run),
    };
    const { syncNeeded } = await withDeadline(
      completeAlone(deps, completion),
      deps.dbDeadlineMs,
      "Sync completion",
    );
    return { upserted: 0, deleted: 0, syncNeeded };
  }
  return await withDeadline(
    inTransaction(deps.sql, async (tx) => {
      await fenceLease(tx, connection, deps.leaseMs);
      const generation = chunk.cursor.fullSyncGeneration ?? 0;
      await compareWithMirror(tx, deps, connection, chunk.upserts, chunk.run);
      const upserted = await upsertEvents(tx, connection.id, chunk.upserts, generation);
      await upsertSeries(tx, connection.id, chunk.series, generation);
      // The round's last commit sweeps the rows it did not see, including those that left the
      // window (the round asked only for the window), in this same transaction, unless the
      // mass-deletion guard holds them.
      const deleted = await applyDeletions(tx, deps, connection, {
        deletes: chunk.deletes,
        sweepGeneration,
      }, chunk.run);
      if (chunk.done) {
        const when = schedule(deps, connection, chunk.run);
        const { syncNeeded } = await completeSync(tx, connection, chunk.next, when);
        return { upserted, deleted, syncNeeded };
      }
      await storeCursor(tx, connection.id, chunk.next);
      return { upserted, deleted, syncNeeded: true };
    }),
    deps.dbDeadlineMs,
    "Sync write transaction",
  );
}

async function completeAlone(deps: SyncDeps, completion: Completion) {
  const [done] = deps.completions
    ? [await deps.completions.submit(completion)]
    : await completeSyncs(deps.sql, [completion]);
  if (done === null) throw new LeaseLostError(completion.connection.id);
  return done;
}

/** The due time a completing chunk stores: next poll, reconciliation, push-missed. */
function schedule(deps: SyncDeps, connection: ClaimedConnection, run: SyncRun) {
  const when = completionSchedule(
    {
      provider: connection.providerKind,
      requested: connection.requested,
      verified: run.reconciling && run.held === null,
      reconciling: run.reconciling,
      hasLivePush: connection.hasLivePush,
      lastNotificationAt: connection.lastNotificationAt,
      changes: run.changes,
      now: deps.now?.() ?? Date.now(),
    },
    deps.poll,
    deps.random ?? Math.random,
  );
  // Counted by the run once this commits.
  run.pushMissed = when.pushMissed;
  return when;
}
