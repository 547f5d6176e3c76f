/** @module The sync cursor stored per connection: the adapter's position plus full-sync state. */
import { z } from "zod";

/**
 * `position` is the adapter's own (sync token, delta link, or a page inside one);
 * `fullSyncGeneration` is set while a full sync is in progress, so its end can sweep rows it
 * did not see, even when the full sync spans several committed chunks or runs.
 */
export type SyncCursor = { position: unknown; fullSyncGeneration: number | null };

const Stored = z.object({
  position: z.unknown(),
  fullSyncGeneration: z.number().int().nullable(),
});

/** Reads a stored cursor; null or unreadable starts a full sync with a fresh generation. */
export function readCursor(stored: unknown, now: number = Date.now()): SyncCursor {
  const parsed = Stored.safeParse(stored);
  if (parsed.success && parsed.data.position !== undefined) {
    return { position: parsed.data.position, fullSyncGeneration: parsed.data.fullSyncGeneration };
  }
  return startFullSync(now);
}

/** A cursor that starts a full sync; the generation only needs to grow between full syncs. */
export function startFullSync(now: number = Date.now()): SyncCursor {
  return { position: null, fullSyncGeneration: now };
}
