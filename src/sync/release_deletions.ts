/** @module An operator's decision on held deletions: apply them, or discard them, and sync again. */
import { deleteEvents } from "../storage/calendar_events.ts";
import type { Sql } from "../storage/client.ts";
import { leaveDeletionsHeld } from "../storage/connections.ts";
import { takeHeldDeletions } from "../storage/held_event_deletions.ts";
import { inTransaction } from "../storage/transaction.ts";

/** What a release did; null when the connection was not holding deletions. */
export type Release = { held: number; deleted: number; discarded: boolean };

/**
 * In one transaction: takes the held ids, deletes those rows (or, with `discard`, keeps them),
 * makes the connection active and requests a sync. A discarded deletion that was real comes
 * back from the provider at the next full listing (reconciliation), and is held again if it
 * still trips the guard.
 */
export async function releaseDeletions(
  sql: Sql,
  connectionId: string,
  options: { discard: boolean },
): Promise<Release | null> {
  return await inTransaction(sql, async (tx) => {
    if (!(await leaveDeletionsHeld(tx, connectionId))) return null;
    const held = await takeHeldDeletions(tx, connectionId);
    const deleted = options.discard ? 0 : await deleteEvents(tx, connectionId, held);
    return { held: held.length, deleted, discarded: options.discard };
  });
}
