/**
 * @module RRULE expansion for the fake providers: FREQ=DAILY|WEEKLY with INTERVAL, COUNT,
 * UNTIL, BYDAY, and EXDATE; wall-clock stepping in the series' zone, so DST moves the UTC time.
 */
import { localToInstant, zoneOffsetMs } from "../src/core/event_time.ts";

/** A series' first start: a wall time in a zone, or a date for all-day series. */
export type SeriesStart = { date: string } | { local: string; zone: string };

/** One expanded occurrence: its start as an instant (timed) or a date (all-day). */
export type Occurrence = { date?: string; instantMs?: number; local?: string };

const DAY = 86_400_000;
const WEEKDAYS = ["SU", "MO", "TU", "WE", "TH", "FR", "SA"];

function basicToMs(value: string, zone: string | null): number | null {
  const m = /^(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})(Z)?)?$/.exec(value);
  if (!m) return null;
  const [, y, mo, d, h, mi, s, z] = m;
  if (h === undefined) return Date.UTC(+y, +mo - 1, +d);
  const local = `${y}-${mo}-${d}T${h}:${mi}:${s}`;
  if (z || zone === null) return Date.parse(`${local}Z`);
  return Date.parse(localToInstant(local, zone) ?? "");
}

/** Formats an instant as a wall time with offset in `zone`, the way Google writes dateTime. */
export function zonedDateTime(ms: number, zone: string): string {
  const offset = zoneOffsetMs(zone, ms);
  const wall = new Date(ms + offset).toISOString().slice(0, 19);
  const sign = offset < 0 ? "-" : "+";
  const abs = Math.abs(offset) / 60_000;
  const hh = String(Math.floor(abs / 60)).padStart(2, "0");
  const mm = String(abs % 60).padStart(2, "0");
  return `${wall}${sign}${hh}:${mm}`;
}

/**
 * Expands `recurrence` lines (RRULE and EXDATE) from `start`, returning occurrences that start
 * in [`fromMs`, `untilMs`), at most `cap` of them (an endless series stays bounded). Earlier
 * ones still count towards COUNT.
 */
export function expandRecurrence(
  recurrence: readonly string[],
  start: SeriesStart,
  untilMs: number,
  options: { fromMs?: number; cap?: number } = {},
): Occurrence[] {
  const fromMs = options.fromMs ?? -Infinity;
  const cap = options.cap ?? 1_000;
  const rule = recurrence.find((line) => line.startsWith("RRULE:"));
  if (!rule) return [];
  const parts = Object.fromEntries(
    rule.slice(6).split(";").map((part) => part.split("=") as [string, string]),
  );
  const allDay = "date" in start;
  const zone = allDay ? null : start.zone;
  const interval = Number(parts.INTERVAL ?? 1);
  const count = parts.COUNT ? Number(parts.COUNT) : Infinity;
  const until = parts.UNTIL ? basicToMs(parts.UNTIL, zone) ?? Infinity : Infinity;
  const excluded = new Set<number>();
  for (const line of recurrence.filter((l) => l.startsWith("EXDATE"))) {
    const [head, values] = line.split(":");
    const tz = /TZID=([^;:]+)/.exec(head)?.[1] ?? zone;
    for (const value of values.split(",")) {
      const ms = basicToMs(value.trim(), tz);
      if (ms !== null) excluded.add(ms);
    }
  }
  const firstWall = allDay
    ? Date.parse(`${start.date}T00:00:00Z`)
    : Date.parse(`${start.local.slice(0, 19)}Z`);
  const byDay = parts.BYDAY ? parts.BYDAY.split(",").map((d: string) => WEEKDAYS.indexOf(d)) : null;
  const weekly = parts.FREQ === "WEEKLY";
  const out: Occurrence[] = [];
  let produced = 0;
  const weekStart = Math.floor(firstWall / DAY) * DAY - new Date(firstWall).getUTCDay() * DAY;
  // Bounded however far back the series started, so an endless rule never loops forever.
  for (let step = 0; produced < count && out.length < cap && step < 200_000; step++) {
    // Wall-clock arithmetic in UTC fields: a day is always 24 wall hours, whatever DST does.
    const candidates: number[] = [];
    if (weekly) {
      const base = weekStart + step * interval * 7 * DAY;
      const days = byDay ?? [new Date(firstWall).getUTCDay()];
      for (const day of [...days].sort()) {
        candidates.push(base + day * DAY + (firstWall % DAY));
      }
    } else {
      candidates.push(firstWall + step * interval * DAY);
    }
    let beyond = false;
    for (const wall of candidates) {
      if (wall < firstWall) continue;
      const local = new Date(wall).toISOString().slice(0, 19);
      const instant = allDay ? wall : Date.parse(localToInstant(local, zone ?? "UTC") ?? "");
      if (instant > until || instant >= untilMs || produced >= count) {
        beyond = true;
        break;
      }
      produced++;
      if (excluded.has(instant) || instant < fromMs) continue;
      out.push(allDay ? { date: local.slice(0, 10) } : { instantMs: instant, local });
      if (out.length >= cap) break;
    }
    if (beyond) break;
  }
  return out;
}

/** Google's instance id suffix: `_YYYYMMDDTHHMMSSZ` (UTC), or `_YYYYMMDD` for all-day. */
export function instanceSuffix(occurrence: Occurrence): string {
  if (occurrence.date) return occurrence.date.replaceAll("-", "");
  const iso = new Date(occurrence.instantMs ?? 0).toISOString();
  return `${iso.slice(0, 19).replace(/[-:]/g, "")}Z`;
}
