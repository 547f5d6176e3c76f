/**
 * @module Converts provider date-times to instants and dates: offsets, IANA and Windows zone
 * names, DST; pure (Intl only).
 */

// Graph names zones the Windows way unless asked otherwise; the common ones, mapped to IANA.
// An unlisted Windows name is refused rather than guessed (the caller classifies it).
const WINDOWS_ZONES: Readonly<Record<string, string>> = {
  "utc": "UTC",
  "coordinated universal time": "UTC",
  "tzone://microsoft/utc": "UTC",
  "greenwich standard time": "Atlantic/Reykjavik",
  "gmt standard time": "Europe/London",
  "w. europe standard time": "Europe/Berlin",
  "romance standard time": "Europe/Paris",
  "central europe standard time": "Europe/Budapest",
  "central european standard time": "Europe/Warsaw",
  "e. europe standard time": "Europe/Chisinau",
  "fle standard time": "Europe/Kyiv",
  "russian standard time": "Europe/Moscow",
  "india standard time": "Asia/Kolkata",
  "china standard time": "Asia/Shanghai",
  "singapore standard time": "Asia/Singapore",
  "tokyo standard time": "Asia/Tokyo",
  "aus eastern standard time": "Australia/Sydney",
  "e. australia standard time": "Australia/Brisbane",
  "new zealand standard time": "Pacific/Auckland",
  "hawaiian standard time": "Pacific/Honolulu",
  "alaskan standard time": "America/Anchorage",
  "pacific standard time": "America/Los_Angeles",
  "mountain standard time": "America/Denver",
  "us mountain standard time": "America/Phoenix",
  "central standard time": "America/Chicago",
  "eastern standard time": "America/New_York",
  "atlantic standard time": "America/Halifax",
  "e. south america standard time": "America/Sao_Paulo",
};

const LOCAL = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?$/;
const WITH_OFFSET = /(Z|[+-]\d{2}:?\d{2})$/i;
const DATE = /^\d{4}-\d{2}-\d{2}$/;
const formatters = new Map<string, Intl.DateTimeFormat>();

/** The IANA name for a provider zone name (IANA, Windows or UTC), or null if unknown. */
export function resolveZone(name: string): string | null {
  const mapped = WINDOWS_ZONES[name.trim().toLowerCase()];
  if (mapped) return mapped;
  try {
    return new Intl.DateTimeFormat("en-US", { timeZone: name }).resolvedOptions().timeZone;
  } catch {
    return null;
  }
}

function formatter(zone: string): Intl.DateTimeFormat {
  let found = formatters.get(zone);
  if (!found) {
    found = new Intl.DateTimeFormat("en-US", {
      timeZone: zone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    formatters.set(zone, found);
  }
  return found;
}

/** How far `zone`'s wall clock is ahead of UTC at the instant `utcMs`. */
export function zoneOffsetMs(zone: string, utcMs: number): number {
  const parts: Record<string, number> = {};
  for (const part of formatter(zone).formatToParts(new Date(utcMs))) {
    if (part.type !== "literal") parts[part.type] = Number(part.value);
  }
  const wall = Date.UTC(
    parts.year,
    parts.month - 1,
    parts.day,
    parts.hour,
    parts.minute,
    parts.second,
  );
  return wall - Math.floor(utcMs / 1000) * 1000;
}

/**
 * The instant (ISO, UTC) of a wall-clock time in `zoneName`, or null when the time or the zone
 * cannot be read. A wall time skipped by a DST change resolves with the offset before it.
 */
export function localToInstant(local: string, zoneName: string): string | null {
  const match = LOCAL.exec(local);
  const zone = resolveZone(zoneName);
  if (!match || !zone) return null;
  const [, y, mo, d, h, mi, s, frac] = match;
  const ms = Number((frac ?? "0").padEnd(3, "0").slice(0, 3));
  const wall = Date.UTC(+y, +mo - 1, +d, +h, +mi, +(s ?? 0), ms);
  if (Number.isNaN(wall)) return null;
  // Two passes settle the offset at the target instant, including right after a DST change.
  const first = wall - zoneOffsetMs(zone, wall);
  const second = wall - zoneOffsetMs(zone, first);
  return new Date(second).toISOString();
}

/** The instant of an RFC 3339 date-time that carries its own offset, or null. */
export function offsetToInstant(value: string): string | null {
  if (!WITH_OFFSET.test(value)) return null;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? null : new Date(ms).toISOString();
}

/** Whether a string is a calendar date `YYYY-MM-DD` that exists. */
export function isDate(value: string): boolean {
  if (!DATE.test(value)) return false;
  const ms = Date.parse(`${value}T00:00:00Z`);
  return !Number.isNaN(ms) && new Date(ms).toISOString().slice(0, 10) === value;
}

/** The date `days` after `date` (both `YYYY-MM-DD`). */
export function addDays(date: string, days: number): string {
  return new Date(Date.parse(`${date}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);
}
