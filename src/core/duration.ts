/** @module Parses human durations such as `72h` or `250ms` for configuration values. */

const UNITS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** Parses `"1500"`, `"250ms"`, `"30s"`, `"15m"`, `"72h"` or `"3d"` into milliseconds, or returns null. */
export function parseDurationMs(text: string): number | null {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text);
  if (!match) return null;
  const value = Number(match[1]) * UNITS[match[2] ?? "ms"];
  return Number.isFinite(value) ? Math.round(value) : null;
}
