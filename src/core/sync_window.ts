/** @module The rolling sync window: which stretch of time the mirror holds; pure. */

/** The stretch of time a sync round mirrors: ISO instants, `start` inclusive, `end` exclusive. */
export type SyncWindow = { start: string; end: string; anchoredAt: string };

const DAY = 86_400_000;

/** How often a connection's window moves forward (a new full round per connection per day). */
export const WINDOW_ROLL_MS = DAY;

/** The window anchored at `now`: `pastDays` back, `futureDays` ahead. */
export function windowAt(now: number, pastDays: number, futureDays: number): SyncWindow {
  if (!Number.isFinite(now)) {
    throw new RangeError(`Cannot compute a sync window as 'now' must be finite: current ${now}`);
  }
  return {
    start: new Date(now - pastDays * DAY).toISOString(),
    end: new Date(now + futureDays * DAY).toISOString(),
    anchoredAt: new Date(now).toISOString(),
  };
}

/** Whether a window anchored long enough ago must roll forward (or there is none yet). */
export function windowIsStale(window: SyncWindow | null, now: number): boolean {
  if (window === null) return true;
  return now - Date.parse(window.anchoredAt) >= WINDOW_ROLL_MS;
}

/**
 * Whether an event lies at least partly inside the window. Timed events compare instants; an
 * all-day event's dates have no zone, so it counts when its dates touch the window anywhere on
 * Earth (a day of slack at each edge); the next round's sweep trims what truly left.
 */
export function overlapsWindow(
  event: {
    startsAt: string | null;
    endsAt: string | null;
    startDate: string | null;
    endDate: string | null;
  },
  window: SyncWindow,
): boolean {
  const start = Date.parse(window.start);
  const end = Date.parse(window.end);
  if (event.startDate !== null && event.endDate !== null) {
    const from = Date.parse(`${event.startDate}T00:00:00Z`) - DAY;
    const to = Date.parse(`${event.endDate}T00:00:00Z`) + DAY;
    return from < end && to > start;
  }
  if (event.startsAt === null) return true;
  const from = Date.parse(event.startsAt);
  const to = event.endsAt === null ? from : Date.parse(event.endsAt);
  // A zero-length event at the window start still shows (Google's timeMin bounds the end).
  return from < end && (to > start || (to === from && from >= start));
}
