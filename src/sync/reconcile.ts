/** @module Which differences a reconciliation found are drift worth counting; pure. */
import type { MirroredEvent } from "../core/mirrored_event.ts";
import type { ProviderKind } from "../core/provider_kind.ts";
import type { Drift } from "./sync_run.ts";

/**
 * The part of the calendar both the old cursor and a fresh full listing cover. Graph's delta
 * keeps the window it was opened with, so each day events age out of a fresh window's past and
 * enter its future: those differences are the window moving, not drift. Google lists everything.
 */
export type StableWindow = { from: number; to: number } | null;

/** The window settings behind Graph's calendarView delta. */
export type WindowSettings = {
  windowPastDays: number;
  windowFutureDays: number;
  reconcileIntervalMs: number;
};

/** The stable window of `kind` at `now`: the fresh window less two reconciliation intervals. */
export function stableWindow(
  kind: ProviderKind,
  settings: WindowSettings,
  now: number,
): StableWindow {
  if (kind !== "microsoft") return null;
  const margin = 2 * settings.reconcileIntervalMs;
  return {
    from: now - settings.windowPastDays * 86_400_000 + margin,
    to: now + settings.windowFutureDays * 86_400_000 - margin,
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
