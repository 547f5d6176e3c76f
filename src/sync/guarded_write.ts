/**
 * @module The steps a chunk's transaction adds for reconciliation and the mass-deletion guard:
 * compare listed events with the mirror, then delete or hold.
 */
import type { MirroredEvent } from "../core/mirrored_event.ts";
import {
  countConnectionEvents,
  deleteEvents,
  existingEventIds,
  findDrift,
  sweepCandidates,
  sweepEvents,
} from "../storage/calendar_events.ts";
import type { Tx } from "../storage/client.ts";
import { type ClaimedConnection, markDeletionsHeld } from "../storage/connections.ts";
import { holdDeletions } from "../storage/held_event_deletions.ts";
import { guardVerdict } from "./deletion_guard.ts";
import { countableDrift, stableWindow } from "./reconcile.ts";
import type { SyncDeps } from "./sync_deps.ts";
import type { SyncRun } from "./sync_run.ts";

function now(deps: SyncDeps): number {
  return deps.now?.() ?? Date.now();
}

/** Before a reconciling chunk's upserts: notes which listed events the mirror lacks or differs on. */
export async function compareWithMirror(
  tx: Tx,
  deps: SyncDeps,
  connection: ClaimedConnection,
  upserts: readonly MirroredEvent[],
  run: SyncRun,
): Promise<void> {
  if (!run.reconciling || upserts.length === 0) return;
  const found = await findDrift(tx, connection.id, upserts);
  const byId = new Map(upserts.map((event) => [event.externalEventId, event]));
  const pick = (ids: string[]) => ids.flatMap((id) => byId.get(id) ?? []);
  const drift = countableDrift(
    { missing: pick(found.missing), changed: pick(found.changed), extra: [] },
    {
      since: run.startedAt,
      window: stableWindow(deps.window, deps.poll.reconcileIntervalMs, now(deps)),
    },
  );
  run.drift.missing.push(...drift.missing);
  run.drift.changed.push(...drift.changed);
}

/**
 * Deletes what the chunk deletes (its tombstones and, at the end of a full listing, the rows it
 * did not list), unless the guard says hold: then the ids are stored, the connection goes to
 * `deletions_held` in this same transaction, and nothing is deleted. Returns rows deleted.
 */
export async function applyDeletions(
  tx: Tx,
  deps: SyncDeps,
  connection: ClaimedConnection,
  input: { deletes: readonly string[]; sweepGeneration: number | null },
  run: SyncRun,
): Promise<number> {
  const explicit = await existingEventIds(tx, connection.id, input.deletes);
  const sweep = input.sweepGeneration === null
    ? null
    : await sweepCandidates(tx, connection.id, input.sweepGeneration);
  const unseen = sweep?.unseen.map((row) => row.id) ?? [];
  const doomed = [...new Set([...explicit.ids, ...unseen])];
  if (doomed.length === 0) return 0;
  const reason = guardVerdict({
    deleting: explicit.rows + unseen.length,
    total: await countConnectionEvents(tx, connection.id),
    listed: sweep === null ? null : sweep.seen,
    holding: run.held !== null,
  }, deps.deleteGuard);
  if (reason !== null) {
    await holdDeletions(tx, connection.id, doomed);
    await markDeletionsHeld(tx, connection.id);
    run.held = {
      count: (run.held?.count ?? 0) + doomed.length,
      reason: run.held?.reason ?? reason,
    };
    run.newlyHeld += doomed.length;
    return 0;
  }
  let deleted = await deleteEvents(tx, connection.id, explicit.ids);
  if (sweep !== null && input.sweepGeneration !== null) {
    deleted += await sweepEvents(tx, connection.id, input.sweepGeneration);
    if (run.reconciling) {
      const window = stableWindow(deps.window, deps.poll.reconcileIntervalMs, now(deps));
      const drift = countableDrift(
        { missing: [], changed: [], extra: sweep.unseen },
        { since: run.startedAt, window },
      );
      run.drift.extra.push(...drift.extra);
    }
  }
  return deleted;
}
