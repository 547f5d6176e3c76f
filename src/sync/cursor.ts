/** @module The sync cursor stored per connection: the adapter's position plus round state. */
import { z } from "zod";
import { type SyncWindow, windowAt, windowIsStale } from "../core/sync_window.ts";

/**
 * `position` is the adapter's own (sync token, delta link, or a page inside one);
 * `fullSyncGeneration` is set while a full sync is in progress, so its end can sweep rows it
 * did not see, even when the full sync spans several committed chunks or runs. `window` is the
 * stretch of time the round mirrors; null (a cursor from before windows) starts a new round.
 */
export type SyncCursor = {
  position: unknown;
  fullSyncGeneration: number | null;
  window: SyncWindow | null;
};

/** The window settings a round is built from. */
export type WindowSettings = { pastDays: number; futureDays: number };

const Window = z.object({ start: z.string(), end: z.string(), anchoredAt: z.string() });

const Stored = z.object({
  position: z.unknown(),
  fullSyncGeneration: z.number().int().nullable(),
  window: Window.nullable().optional(),
});

/** Reads a stored cursor; null or unreadable starts a full sync with a fresh generation. */
export function readCursor(
  stored: unknown,
  now: number = Date.now(),
  settings?: WindowSettings,
): SyncCursor {
  const parsed = Stored.safeParse(stored);
  if (parsed.success && parsed.data.position !== undefined) {
    return {
      position: parsed.data.position,
      fullSyncGeneration: parsed.data.fullSyncGeneration,
      window: parsed.data.window ?? null,
    };
  }
  return startFullSync(now, settings);
}

/** A cursor that starts a full sync; the generation only needs to grow between full syncs. */
export function startFullSync(now: number = Date.now(), settings?: WindowSettings): SyncCursor {
  return {
    position: null,
    fullSyncGeneration: now,
    window: settings ? windowAt(now, settings.pastDays, settings.futureDays) : null,
  };
}

/**
 * The cursor a run starts from. A completed round whose window is a day old (or that has no
 * window) starts a new full round over the moved window; its rows stay until the new round's
 * last commit sweeps what it did not see, so the mirror is never empty half-way. A round in
 * progress keeps its window, so all its pages ask the provider the same question.
 */
export function cursorForRun(
  stored: SyncCursor,
  now: number,
  settings: WindowSettings,
): { cursor: SyncCursor & { window: SyncWindow }; rolled: boolean } {
  const inRound = stored.fullSyncGeneration !== null;
  if (stored.window !== null && (inRound || !windowIsStale(stored.window, now))) {
    return { cursor: { ...stored, window: stored.window }, rolled: false };
  }
  const window = windowAt(now, settings.pastDays, settings.futureDays);
  if (inRound && stored.position === null) {
    // A full sync that has not read a page yet: give it today's window.
    return { cursor: { ...stored, window }, rolled: false };
  }
  return { cursor: { position: null, fullSyncGeneration: now, window }, rolled: true };
}
