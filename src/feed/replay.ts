/** @module Folds a change feed into the mirror it describes (consumers, tests and drills). */
import type { ChangeRow } from "../storage/change_feed.ts";

/** The occurrences a feed describes, keyed `connection_id/external_event_id`. */
export type ReplayedMirror = Map<string, Record<string, unknown>>;

/** The key of an occurrence in a replayed mirror. */
export function occurrenceKey(connectionId: string, externalEventId: string): string {
  return `${connectionId}/${externalEventId}`;
}

/**
 * Applies changes in order: created and updated store the row, deleted removes it; connection
 * changes describe state, not rows. Throws on a gap or a repeat, which a feed must never have.
 */
export function replayChanges(
  mirror: ReplayedMirror,
  changes: readonly Pick<
    ChangeRow,
    "seq" | "type" | "connection_id" | "external_event_id" | "data"
  >[],
  lastSeq: number,
): number {
  let seq = lastSeq;
  for (const change of changes) {
    if (change.seq !== seq + 1) {
      throw new RangeError(`Cannot replay change ${change.seq}: expected ${seq + 1}`);
    }
    seq = change.seq;
    if (!change.type.startsWith("event.")) continue;
    const key = occurrenceKey(change.connection_id ?? "", change.external_event_id ?? "");
    if (change.type === "event.deleted") mirror.delete(key);
    else mirror.set(key, change.data ?? {});
  }
  return seq;
}
