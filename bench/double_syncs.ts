/**
 * @module Detects a connection synced twice at once: sync intervals from the daemons' own log
 * lines (commit time and duration) that overlap, cross-checked with the fake's request log.
 */
import type { RecordedRequest } from "../testkit/fake_faults.ts";

/** What the check found in one drain. */
export type DoubleSyncs = {
  /** Connections whose sync intervals overlapped (two runs at once): must be 0. */
  concurrent: number;
  /** Connections synced more than once in the drain (each was requested once). */
  repeated: number;
  /** Successful sync log lines seen. */
  syncs: number;
  /** Distinct calendars the fake was asked to list. */
  listed: number;
};

type Interval = { start: number; end: number };

/** Reads successful-sync log lines and list requests; throws when a sync is missing. */
export function countDoubleSyncs(input: {
  logs: readonly Record<string, unknown>[];
  requests: readonly RecordedRequest[];
  expected: number;
}): DoubleSyncs {
  const byConnection = new Map<string, Interval[]>();
  let syncs = 0;
  for (const line of input.logs) {
    if (line.category !== "calsync.sync" || typeof line.connection_id !== "string") continue;
    if (!String(line.message).endsWith("succeeded")) continue;
    if (typeof line.duration_ms !== "number" || typeof line.committed_at !== "string") continue;
    syncs++;
    // The line is written after the run gave its lease back: its own time can be later than the
    // start of the connection's next run, so the interval ends at the commit the line reports.
    const end = Date.parse(line.committed_at);
    const list = byConnection.get(line.connection_id) ?? [];
    list.push({ start: end - line.duration_ms, end });
    byConnection.set(line.connection_id, list);
  }
  let concurrent = 0;
  let repeated = 0;
  for (const intervals of byConnection.values()) {
    if (intervals.length < 2) continue;
    repeated++;
    intervals.sort((a, b) => a.start - b.start);
    // Log times and durations are whole milliseconds: allow one of rounding either way.
    if (intervals.some((current, i) => i > 0 && current.start < intervals[i - 1].end - 1)) {
      concurrent++;
    }
  }
  const listsPerCalendar = new Map<string, number>();
  for (const request of input.requests) {
    if (request.method !== "GET" || !request.path.endsWith("/events")) continue;
    listsPerCalendar.set(request.path, (listsPerCalendar.get(request.path) ?? 0) + 1);
  }
  const listedTwice = [...listsPerCalendar.values()].filter((n) => n > 1).length;
  if (syncs < input.expected || listsPerCalendar.size < input.expected) {
    throw new Error(
      `Expected ${input.expected} syncs; saw ${syncs} success log lines and ` +
        `${listsPerCalendar.size} calendars listed`,
    );
  }
  return {
    concurrent,
    repeated: Math.max(repeated, listedTwice),
    syncs,
    listed: listsPerCalendar.size,
  };
}
