/** @module Which differences a reconciliation found are drift worth counting; pure. */
import type { MirroredEvent } from "../core/mirrored_event.ts";
import type { WindowSettings } from "./cursor.ts";
import type { Drift } from "./sync_run.ts";

/**
 * The part of the calendar both the cursor's round and a fresh full listing cover. Both
 * providers mirror a rolling window anchored when its round began, so events age out of a fresh
 * window's past and enter its future: those differences are the window moving, not drift.
 */
export type StableWindow = { from: number; to: number } | null;

/** The stable window at `now`: the fresh window less two reconciliation intervals each side. */
export function stableWindow(
  window: WindowSettings,
  reconcileIntervalMs: number,
  now: number,
): StableWindow {
  const margin = 2 * reconcileIntervalMs;
  return {
    from: now - window.pastDays * 86_400_000 + margin,
    to: now + window.futureDays * 86_400_000 - margin,
  };
}

/** What a reconciliation's comparison found, before filtering. */
export type Differences = {
  missing: readonly MirroredEvent[];
  changed: readonly MirroredEvent[];
  extra: readonly { id: string; endsAt: Date | null }[];
};

function parsed(value: string | null): number | null {
  if (value === null) return null;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? null : ms;
}

/**
 * The drift to count and log: differences the incremental sync should have brought. An event
 * the provider changed after the run began (`since`) is news the next sync brings, and
 * differences outside the stable window are the window moving. All of them are repaired anyway.
 */
export function countableDrift(
  found: Differences,
  options: { since: number; window: StableWindow },
): Drift {
  const { since, window } = options;
  const news = (event: MirroredEvent) => {
    const updated = parsed(event.providerUpdatedAt);
    if (updated !== null && updated >= since) return true;
    const starts = parsed(event.startsAt);
    return window !== null && starts !== null && starts > window.to;
  };
  return {
    missing: found.missing.filter((event) => !news(event)).map((e) => e.externalEventId),
    changed: found.changed.filter((event) => !news(event)).map((e) => e.externalEventId),
    extra: found.extra
      .filter((row) =>
        !(window !== null && row.endsAt !== null && row.endsAt.getTime() < window.from)
      )
      .map((row) => row.id),
  };
}
