/** @module `calsync sync` and `calsync status`. */
import { CommandError } from "../core/errors.ts";
import { findProvider } from "../storage/calendar_providers.ts";
import { listConnectionStatus, requestSync } from "../storage/connections.ts";
import { type CommandHandler, connectionOption, uuid } from "./command_context.ts";
import { formatTable } from "./format.ts";

/** Requests a sync (`--force` past the backoff, `--full` from scratch). */
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
  ];
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
    })),
    formatTable(rows, [...columns, "status"]),
  );
};
