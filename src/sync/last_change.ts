/** @module Reduces a batch of provider changes to what the mirror must write; pure. */
import type { MirroredEvent } from "../core/mirrored_event.ts";
import type { EventChange } from "../providers/adapter.ts";

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
