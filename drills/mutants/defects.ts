/**
 * @module The defects the drill claims to catch, as data: each is exact search/replace edits of
 * `src/` (or a migration) and the diagnosis the drill must give. A defect of a feature still being built is listed
 * with `pending` (why it cannot be applied yet) and no edits; once the feature and its drill
 * scenario land, its edits and expectation are filled in here and nothing else changes.
 */
import type { Symptom } from "../drill/diagnosis.ts";

/** One exact edit: `search` must occur exactly once in `file` (relative to the project root). */
export type Edit = { file: string; search: string; replace: string };

/** A planted defect and what the drill must say about it. */
export type Defect = {
  id: string;
  description: string;
  edits: readonly Edit[];
  /** The one diagnosis every failed check must carry. */
  expected: Symptom;
  /** Why it cannot be applied yet (a feature other work is building); then `edits` is empty. */
  pending?: string;
};

const CONNECTIONS = "src/storage/connections.ts";
const BACKOFF = "src/failures/backoff.ts";
const RECORD_FAILURE = "src/sync/record_failure.ts";

/** Every defect, in the order the table lists them. */
export const DEFECTS: readonly Defect[] = [
  {
    id: "failed-sync-clears-sync-needed",
    description: "A failed sync sets sync_needed = false (never retried by the daemon)",
    expected: "Backoff Not Activated",
    edits: [{
      file: CONNECTIONS,
      search: "      sync_needed = true,\n      sync_cursor = case when ${clear}",
      replace: "      sync_needed = false,\n      sync_cursor = case when ${clear}",
    }],
  },
  {
    id: "webhook-db-error-not-logged",
    description: "A webhook that cannot reach the database logs nothing",
    expected: "Silent Failures",
    edits: [
      {
        file: "src/webhooks/google_webhook.ts",
        search:
          '  log.error("Cannot record a Google notification: database unavailable; answered 503", {\n',
        replace: "  void ({\n",
      },
      {
        file: "src/webhooks/microsoft_webhook.ts",
        search:
          '  log.error("Cannot record Graph notifications: database unavailable; answered 503", {\n',
        replace: "  void ({\n",
      },
    ],
  },
  {
    id: "backoff-never-grows",
    description: "The backoff stays at the base for every failure in a row",
    expected: "Backoff Not Activated",
    edits: [{
      file: BACKOFF,
      search: "const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt - 1, 52));",
      replace: "const ceiling = Math.min(maxMs, baseMs);",
    }],
  },
  {
    id: "retry-after-capped",
    description: "Retry-After cut short at the maximum backoff",
    expected: "Backoff Not Activated",
    edits: [{
      file: BACKOFF,
      search: "  return Math.max(jittered, Math.ceil(input.retryAfterMs ?? 0));",
      replace: "  return Math.min(maxMs, Math.max(jittered, Math.ceil(input.retryAfterMs ?? 0)));",
    }],
  },
  {
    id: "no-backoff",
    description: "No backoff at all: a failed sync is due again at once",
    expected: "Backoff Not Activated",
    edits: [{
      file: RECORD_FAILURE,
      search: "  const delayMs = backoffDelayMs({",
      replace: "  const delayMs = 0 * backoffDelayMs({",
    }],
  },
  {
    id: "error-count-not-incremented",
    description: "A failed sync does not increment error_count",
    expected: "Backoff Not Activated",
    edits: [{
      file: CONNECTIONS,
      search:
        "      error_count = error_count + 1,\n      last_error = ${sql.json(failure.lastError",
      replace: "      error_count = error_count,\n      last_error = ${sql.json(failure.lastError",
    }],
  },
  {
    id: "last-error-not-written",
    description: "A failed sync does not store last_error",
    expected: "Silent Failures",
    edits: [{
      file: CONNECTIONS,
      search: "      last_error = ${sql.json(failure.lastError as never)},\n",
      replace: "",
    }],
  },
  {
    id: "failure-not-counted",
    description: "Failed syncs are not counted in calendar_sync_failures_total",
    expected: "Silent Failures",
    edits: [{
      file: RECORD_FAILURE,
      search: "  deps.metrics.syncFailures.inc({ provider, reason: failure.kind });\n",
      replace: "",
    }],
  },
  {
    id: "webhook-2xx-when-db-down",
    description: "A webhook answers 2xx while the database is down",
    expected: "Silent Failures",
    edits: [{
      file: "src/webhooks/webhook_deps.ts",
      search: "    return await handle(startedAt);",
      replace: "    return await handle(startedAt).catch((error) =>\n" +
        "      error?.status === 503 ? new Response(null, { status: 202 }) : Promise.reject(error)\n" +
        "    );",
    }],
  },
  {
    id: "upsert-outside-transaction",
    description: "The event upsert runs outside the sync's write transaction",
    expected: "Partial State Written",
    edits: [{
      file: "src/sync/write_chunk.ts",
      search: "upsertEvents(tx, connection.id",
      replace: "upsertEvents(deps.sql, connection.id",
    }],
  },
  {
    id: "sync-failure-not-logged",
    description: "A failed sync writes no log line",
    expected: "Silent Failures",
    edits: [{
      file: RECORD_FAILURE,
      search: '  log.error("Sync of connection {connection_id} failed: {kind}", {\n' +
        "    ...fields,\n    ...(rejection &&",
      replace: "  void ({\n    ...fields,\n    ...(rejection &&",
    }],
  },
  {
    id: "backoff-not-cleared",
    description: "A successful sync leaves backoff_until set",
    expected: "Backoff Not Activated",
    edits: [{
      file: CONNECTIONS,
      search: "      backoff_until = null,\n      last_synced_at = now(),\n      last_success_at",
      replace: "      last_synced_at = now(),\n      last_success_at",
    }],
  },
  {
    id: "error-count-not-reset",
    description: "A successful sync leaves error_count as it was",
    expected: "Backoff Not Activated",
    edits: [{ file: CONNECTIONS, search: "      error_count = 0,\n", replace: "" }],
  },
  {
    id: "skipped-poll",
    description: "The safety-net poll of a connection with a live channel waits a day",
    expected: "Silent Failures",
    edits: [{
      file: "src/sync/poll_schedule.ts",
      search: "    longPollMs: jitteredMs(settings.pollIntervalWithPushMs, random()),\n",
      replace: "    longPollMs: 86_400_000,\n",
    }],
  },
  {
    id: "guard-deletes-anyway",
    description: "The deletion guard never holds: an empty full listing sweeps the mirror",
    expected: "Partial State Written",
    edits: [{
      file: "src/sync/deletion_guard.ts",
      search: "  if (plan.deleting === 0) return null;\n",
      replace: "  if (plan.deleting >= 0) return null;\n",
    }],
  },
  {
    id: "lost-outbox-row",
    description: "The outbox never records a created occurrence (the mirror has it, the feed not)",
    expected: "Silent Failures",
    edits: [{
      file: "migrations/008_change_feed.sql",
      search: "  from new_rows n group by n.connection_id;\n",
      replace: "  from new_rows n where false group by n.connection_id;\n",
    }],
  },
];
