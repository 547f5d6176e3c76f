/** @module Reads the daemon's JSON log lines: failures (with the counters each one bumps) and run ends. */
import type { LogLine } from "../drill/evidence.ts";

/** A `calendar_sync_failures_total` label pair. */
export type FailureLabel = { provider: string; reason: string };

const text = (line: LogLine, key: string) =>
  typeof line[key] === "string" ? line[key] as string : "";

/**
 * The `calendar_sync_failures_total{provider, reason}` increments the daemon makes together
 * with this line (see src/sync/run_sync.ts, src/scheduler/scheduler.ts,
 * src/channels/channel_failure.ts); empty for lines that are not failures.
 */
export function failureIncrements(line: LogLine): FailureLabel[] {
  const message = text(line, "message");
  const category = text(line, "category");
  const provider = text(line, "provider");
  const kind = text(line, "kind");
  if (category === "calsync.sync") {
    if (/^Sync of connection \S+ failed: /.test(message)) return [{ provider, reason: kind }];
    if (/^Connection \S+ needs re-authorisation/.test(message)) return [{ provider, reason: kind }];
    if (message.startsWith("Cannot record the failed sync of connection")) {
      // The failure itself, then the database error that kept it from being recorded.
      return [{ provider, reason: kind }, { provider, reason: "database" }];
    }
    if (/^Cursor of connection \S+ expired/.test(message)) {
      return [{ provider, reason: "cursor_expired" }];
    }
  }
  if (category === "calsync.scheduler" && message.startsWith("Cannot claim due connections")) {
    return [{ provider: "all", reason: "database" }];
  }
  if (
    category === "calsync.channels" && /^Channel (create|renew|stop) for connection /.test(message)
  ) {
    return [{ provider, reason: kind }];
  }
  return [];
}

/** The connection whose sync run this line ends (success, failure, cancel), else null. */
export function runEndConnection(line: LogLine): string | null {
  const message = text(line, "message");
  const connection = text(line, "connection_id");
  if (!connection) return null;
  const category = text(line, "category");
  if (category === "calsync.scheduler") {
    return message === "Sync run threw unexpectedly" ? connection : null;
  }
  if (category !== "calsync.sync") return null;
  const ends = /^Sync of connection \S+ (succeeded|failed: |stopped by shutdown)/.test(message) ||
    /^Connection \S+ needs re-authorisation/.test(message) ||
    message.startsWith("Cannot record the failed sync of connection");
  return ends ? connection : null;
}

/** The line's time in ms since epoch (NaN when it has none). */
export function lineTime(line: LogLine): number {
  return Date.parse(text(line, "time"));
}

/** Counts increments by `provider/reason`. */
export function countByLabel(labels: readonly FailureLabel[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const { provider, reason } of labels) {
    const key = `${provider}/${reason}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

// The fields the architecture requires on every failed sync's line.
const SYNC_FAILURE_FIELDS = [
  "connection_id",
  "provider",
  "kind",
  "status",
  "attempt",
  "backoff_until",
];

/** Fields a failed sync's line lacks (empty for complete lines and for other lines). */
export function missingFailureFields(line: LogLine): string[] {
  const message = text(line, "message");
  const failed = /^Sync of connection \S+ failed: /.test(message) ||
    /^Connection \S+ needs re-authorisation/.test(message) ||
    message.startsWith("Cannot record the failed sync of connection");
  if (text(line, "category") !== "calsync.sync" || !failed) return [];
  return SYNC_FAILURE_FIELDS.filter((field) => !(field in line));
}
