/** @module Checks of the database failure scenario (cut, cut mid-write, exhausted slots). */
import { type CheckOutcome, outcome } from "./diagnosis.ts";
import type {
  CommandResult,
  DatabaseOutageEvidence,
  DeliveryAttempt,
  LogLine,
} from "./evidence.ts";

/** The note every webhook check carries when the daemon has no webhook endpoint. */
export const WEBHOOK_UNAVAILABLE = "webhook endpoint not available";

/**
 * The delivery ids a webhook handler's line names, in the form DeliveryAttempt.ids uses: Google's
 * channel id and message number, Graph's subscription ids.
 */
export function deliveryIdsOfLine(line: LogLine): string[] {
  if (line.provider === "google" && line.channel_id !== undefined) {
    return [`google:${line.channel_id}:${line.message_number}`];
  }
  if (line.provider === "microsoft" && Array.isArray(line.subscription_ids)) {
    return line.subscription_ids.map((id) => `microsoft:${id}`);
  }
  return [];
}

/**
 * The operation under test logged its database error (no silent failure): for a webhook, a
 * handler line naming one of the deliveries made during the outage.
 */
export function checkDatabaseErrorLogged(evidence: DatabaseOutageEvidence): CheckOutcome {
  const wanted = evidence.deliveryIds;
  const lines = wanted === null
    ? evidence.databaseLogs
    : evidence.databaseLogs.filter((line) =>
      deliveryIdsOfLine(line).some((id) => wanted.includes(id))
    );
  if (lines.length === 0) {
    const other = evidence.databaseLogs.length;
    return outcome(
      false,
      wanted === null
        ? "no error line with kind=database"
        : `no webhook handler line with kind=database naming a delivery of the outage ` +
          `(${wanted.length} deliveries, ${other} handler lines naming others)`,
      "Silent Failures",
    );
  }
  const first = lines[0];
  const cause = first.error ?? first.record_error ?? first.error_message ?? null;
  const text = typeof cause === "object" && cause !== null
    ? String((cause as Record<string, unknown>).message ?? "")
    : String(cause ?? "");
  return outcome(
    true,
    `${lines.length} lines; first: ${first.category} "${first.message}"` +
      (wanted === null ? "" : ` for ${deliveryIdsOfLine(first).join(", ")}`) +
      (text ? ` (${text.slice(0, 120)})` : ""),
    "Silent Failures",
  );
}

function describeAttempts(attempts: readonly DeliveryAttempt[]): string {
  return attempts.map((a) => `#${a.attempt}=${a.status}`).join(", ") || "none";
}

/** The webhook delivered during the outage got a 5xx, so the provider retries it. */
export function checkWebhookRejected(evidence: DatabaseOutageEvidence): CheckOutcome {
  const attempts = evidence.webhookAttempts;
  if (attempts === null) return outcome(false, evidence.webhookNote, null);
  const answered = attempts.filter((a) => typeof a.status === "number");
  const rejected = answered.filter((a) => (a.status as number) >= 500);
  const acknowledged = answered.filter((a) => (a.status as number) < 300);
  const pass = rejected.length > 0 && acknowledged.length === 0;
  // A 2xx while the database is down means the notification was dropped without a trace.
  return outcome(
    pass,
    `deliveries during the outage: ${describeAttempts(attempts)}`,
    "Silent Failures",
  );
}

/**
 * Webhooks failed fast: each was answered within the daemon's own response deadline (plus
 * transport slack) instead of waiting for a connection until the provider gives up.
 */
export function checkFailedFast(
  evidence: DatabaseOutageEvidence,
  limits: { deadlineMs: number; slackMs: number },
): CheckOutcome {
  if (evidence.webhookAttempts === null) return outcome(false, evidence.webhookNote, null);
  const latencies = evidence.webhookLatenciesMs;
  const slowest = latencies.length === 0 ? null : Math.max(...latencies);
  const pass = slowest !== null && slowest <= limits.deadlineMs + limits.slackMs;
  const atDeadline = slowest !== null && slowest >= limits.deadlineMs;
  return outcome(
    pass,
    slowest === null
      ? "no webhook answer measured"
      : `${latencies.length} answers, slowest ${Math.round(slowest)} ms (deadline ` +
        `${limits.deadlineMs} ms + ${limits.slackMs} ms slack)` +
        (atDeadline ? "; the database call did not fail by itself, the deadline ended it" : ""),
    null,
  );
}

/** `calsync sync --connection` during the outage exited 1 with a database error message. */
export function checkCommandReportsError(command: CommandResult | null): CheckOutcome {
  if (command === null) return outcome(false, "the command did not run", null);
  const line = command.stderr.trim().split("\n")[0] ?? "";
  const pass = command.code === 1 && /database/i.test(line);
  return outcome(
    pass,
    `exit ${command.code} after ${command.durationMs} ms: "${line.slice(0, 160)}"`,
    "Silent Failures",
  );
}

/** The operator's retry of the command after the restore succeeded. */
export function checkCommandSucceeded(command: CommandResult | null): CheckOutcome {
  if (command === null) return outcome(false, "the command did not run", null);
  const line = command.stderr.trim().split("\n")[0] ?? "";
  return outcome(
    command.code === 0,
    `exit ${command.code} after ${command.durationMs} ms` + (line ? `: "${line}"` : ""),
    null,
  );
}

/** After the restore the provider's retry of the webhook was acknowledged with a 2xx. */
export function checkWebhookRedelivered(
  attempts: readonly DeliveryAttempt[] | null,
  note: string,
): CheckOutcome {
  if (attempts === null) return outcome(false, note, null);
  const ok = attempts.filter((a) => typeof a.status === "number" && a.status < 300);
  return outcome(
    ok.length > 0,
    `deliveries after the restore: ${describeAttempts(attempts)}`,
    "Silent Failures",
  );
}
