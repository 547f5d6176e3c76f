/** @module Checks every scenario shares: logs, metrics, untouched data, liveness, recovery. */
import { type CheckOutcome, outcome, type Symptom } from "./diagnosis.ts";
import type { ConnectionState, EventSnapshot, LogLine, RecoveryEvidence } from "./evidence.ts";

/** Renders a date (or null) for evidence text. */
export function when(value: Date | number | null | undefined): string {
  if (value === null || value === undefined) return "null";
  return new Date(value).toISOString();
}

function short(value: unknown, max = 160): string {
  const text = JSON.stringify(value) ?? "undefined";
  return text.length > max ? `${text.slice(0, max)}...` : text;
}

// The fields the architecture puts on every failure line; `status` may be null (no HTTP answer).
const FAILURE_FIELDS = ["connection_id", "provider", "kind", "attempt", "backoff_until"];

/** A structured JSON error line for the failure was written, with the expected kind and fields. */
export function checkFailureLogged(
  evidence: { failureLog: LogLine | null; expectedKind: string },
): CheckOutcome {
  const line = evidence.failureLog;
  if (line === null) {
    return outcome(false, `no JSON log line with kind=${evidence.expectedKind}`, "Silent Failures");
  }
  const missing = FAILURE_FIELDS.filter((field) => !(field in line));
  const pass = line.level === "error" && line.kind === evidence.expectedKind &&
    missing.length === 0;
  const detail = `level=${line.level} kind=${line.kind} status=${line.status ?? null} ` +
    `attempt=${line.attempt} backoff_until=${line.backoff_until ?? null}` +
    (missing.length > 0 ? `; missing fields: ${missing.join(", ")}` : "");
  return outcome(pass, detail, "Silent Failures");
}

/**
 * A failure counter scraped from /metrics went up between two scrapes; by exactly `expected`
 * when given (one increment per failure the drill saw).
 */
export function checkMetricIncreased(
  evidence: { metric: string; before: number; after: number; expected?: number },
): CheckOutcome {
  const delta = evidence.after - evidence.before;
  const pass = evidence.expected === undefined
    ? delta > 0
    : evidence.expected > 0 && delta === evidence.expected;
  return outcome(
    pass,
    `${evidence.metric} ${evidence.before} -> ${evidence.after}` +
      (evidence.expected === undefined ? "" : ` (${evidence.expected} failures)`),
    "Silent Failures",
  );
}

/** The connection's events are byte-for-byte what they were before the fault. */
export function checkEventsUnchanged(
  evidence: { eventsBefore: EventSnapshot; eventsAfter: EventSnapshot; markerRows?: number },
): CheckOutcome {
  const { eventsBefore: before, eventsAfter: after } = evidence;
  const changed = after.filter((line) => !before.includes(line)).length;
  const lost = before.filter((line) => !after.includes(line)).length;
  const markers = evidence.markerRows ?? 0;
  const pass = changed === 0 && lost === 0 && before.length === after.length && markers === 0;
  const detail = `${before.length} rows before, ${after.length} after; ${changed} new or ` +
    `changed, ${lost} gone` + (evidence.markerRows === undefined ? "" : `; ${markers} marker rows`);
  return outcome(pass, detail, "Partial State Written");
}

/** The daemon process is still running and answers /healthz. */
export function checkDaemonAlive(
  evidence: { daemonAlive: boolean; healthStatus: number | null },
): CheckOutcome {
  const pass = evidence.daemonAlive && evidence.healthStatus === 200;
  return outcome(
    pass,
    `process ${evidence.daemonAlive ? "running" : "exited"}, /healthz ${
      evidence.healthStatus ?? "no answer"
    }`,
    null,
  );
}

/** Columns a failed operation that committed nothing must leave as they were. */
function durableColumns(row: ConnectionState): Record<string, unknown> {
  return {
    error_count: row.errorCount,
    last_error: row.lastError,
    backoff_until: when(row.backoffUntil),
    last_success_at: when(row.lastSuccessAt),
    sync_cursor: row.syncCursor,
    status: row.status,
  };
}

/** The connection row was not partially updated: its sync columns are as they were. */
export function checkConnectionUntouched(
  evidence: { rowBefore: ConnectionState | null; rowAfter: ConnectionState | null },
): CheckOutcome {
  const { rowBefore, rowAfter } = evidence;
  if (rowBefore === null || rowAfter === null) {
    return outcome(false, "connection row not readable", "Partial State Written");
  }
  const before = durableColumns(rowBefore);
  const after = durableColumns(rowAfter);
  const differing = Object.keys(before).filter((key) =>
    JSON.stringify(before[key]) !== JSON.stringify(after[key])
  );
  const detail = differing.length === 0
    ? `error_count=${rowAfter.errorCount} sync_cursor, last_error, backoff_until, ` +
      `last_success_at unchanged`
    : differing.map((key) => `${key}: ${short(before[key], 60)} -> ${short(after[key], 60)}`)
      .join("; ");
  return outcome(differing.length === 0, detail, "Partial State Written");
}

/** After the fault was removed, a sync of the connection succeeded. */
export function checkRecoverySync(evidence: RecoveryEvidence, symptom: Symptom): CheckOutcome {
  const line = evidence.successLog;
  if (line === null) return outcome(false, "no successful sync logged after the restore", symptom);
  return outcome(
    true,
    `sync succeeded at ${line.time}: upserted=${line.upserted} deleted=${line.deleted}`,
    symptom,
  );
}

/** After recovery `backoff_until` is cleared. */
export function checkBackoffCleared(evidence: RecoveryEvidence): CheckOutcome {
  const row = evidence.row;
  return outcome(
    row !== null && row.backoffUntil === null,
    `backoff_until=${when(row?.backoffUntil)}`,
    "Backoff Not Activated",
  );
}

/** After recovery `error_count` is back to 0. */
export function checkErrorCountReset(evidence: RecoveryEvidence): CheckOutcome {
  const row = evidence.row;
  return outcome(
    row !== null && row.errorCount === 0,
    `error_count=${row?.errorCount ?? "no row"} last_success_at=${when(row?.lastSuccessAt)}`,
    "Backoff Not Activated",
  );
}

/** After recovery the mirror holds exactly the provider's live events (id, title, etag). */
export function checkMirrorMatchesProvider(evidence: RecoveryEvidence): CheckOutcome {
  const missing = evidence.provider.filter((line) => !evidence.mirror.includes(line));
  const extra = evidence.mirror.filter((line) => !evidence.provider.includes(line));
  const pass = missing.length === 0 && extra.length === 0 &&
    evidence.mirror.length === evidence.provider.length;
  const detail = `${evidence.mirror.length} mirrored, ${evidence.provider.length} at the ` +
    `provider; ${missing.length} missing, ${extra.length} extra or stale` +
    (missing.length + extra.length > 0 ? ` (e.g. ${[...missing, ...extra][0]})` : "");
  return outcome(pass, detail, "Partial State Written");
}

/** Renders a value compactly for evidence text. */
export function compact(value: unknown): string {
  return short(value);
}
