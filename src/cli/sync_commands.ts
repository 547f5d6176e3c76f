/** @module `calsync sync` and `calsync status`. */
import { CommandError } from "../core/errors.ts";
import { findProvider } from "../storage/calendar_providers.ts";
import { listConnectionStatus, requestSync } from "../storage/connections.ts";
import { type ProviderHealthRow, readProviderHealth } from "../storage/provider_health.ts";
import { type CommandHandler, connectionOption, uuid } from "./command_context.ts";
import { formatAge, formatTable } from "./format.ts";

/**
 * Requests a sync (`--force` past the backoff and out of a terminal state such as
 * `calendar_unavailable`, `--full` from scratch).
 */
export const syncCommand: CommandHandler = async ({ sql, options, emit }) => {
  const id = connectionOption(options);
  const ok = await requestSync(sql, id, {
    force: options.force === true,
    full: options.full === true,
  });
  if (!ok) throw new CommandError(`No connection "${id}"`);
  emit({ id, sync_requested: true }, `Sync requested for connection ${id}\n`);
};

/** The drill's verification columns, for one connection, one provider or all. */
export const statusCommand: CommandHandler = async ({ sql, options, emit }) => {
  let providerId: string | undefined;
  if (typeof options.provider === "string") {
    const provider = await findProvider(sql, options.provider);
    if (!provider) throw new CommandError(`No provider "${options.provider}"`);
    providerId = provider.id;
  }
  const connectionId = typeof options.connection === "string"
    ? uuid(options.connection, "connection")
    : undefined;
  const rows = await listConnectionStatus(sql, { connectionId, providerId });
  if (connectionId && rows.length === 0) throw new CommandError(`No connection "${connectionId}"`);
  const columns = [
    "id",
    "provider_id",
    "error_count",
    "last_error",
    "backoff_until",
    "sync_needed",
    "status",
    "last_success",
    "last_notification",
    "last_verified",
    "held_deletions",
  ];
  const now = Date.now();
  const breakers = await readProviderHealth(sql);
  const circuit = new Map(breakers.map((row) => [row.provider, row.state]));
  // Ages next to the timestamps: "how stale is this mirror" is the question status answers.
  const ages = (row: (typeof rows)[number]) => ({
    last_success: formatAge(row.last_success_at, now),
    last_notification: formatAge(row.last_notification_at, now),
    last_verified: formatAge(row.last_verified_at, now),
  });
  emit(
    rows.map((row) => ({
      id: row.id,
      provider_id: row.provider_id,
      provider_name: row.provider_name,
      status: row.status,
      error_count: row.error_count,
      last_error: row.last_error,
      backoff_until: row.backoff_until,
      sync_needed: row.sync_needed,
      last_success_at: row.last_success_at,
      last_notification_at: row.last_notification_at,
      last_verified_at: row.last_verified_at,
      next_due_at: row.due_at,
      held_deletions: row.held_deletions,
      provider_circuit: circuit.get(row.provider_kind) ?? "closed",
      ages: ages(row),
    })),
    formatTable(rows.map((row) => ({ ...row, ...ages(row) })), columns) +
      breakers.map((row) => breakerLine(row, now)).join(""),
  );
};

/** One line per provider breaker under the table: its state, and what an open one waits for. */
function breakerLine(row: ProviderHealthRow, now: number): string {
  // A row nobody tripped yet carries the epoch (see ensureProviderHealth).
  const since = row.changed_at.getTime() === 0
    ? "never opened"
    : `changed ${formatAge(row.changed_at, now)}`;
  const detail = row.state === "open" && row.probe_at
    ? `, next probe in ${Math.max(0, Math.round((row.probe_at.getTime() - now) / 1000))}s, ` +
      `opened by ${JSON.stringify(row.reason)}`
    : row.state === "half_open"
    ? `, probe running on ${row.probe_owner}`
    : "";
  const quota = row.quota_per_minute !== null && row.rate_limited_at !== null
    ? `; quota slowed to ${Math.round(row.quota_per_minute)}/min by a rate limit ${
      formatAge(row.rate_limited_at, now)
    }`
    : "";
  return `provider ${row.provider}: circuit ${row.state} (${since})${detail}${quota}\n`;
}
