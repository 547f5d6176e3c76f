/** @module Operator commands that talk to the database and exit. */

import { stopConnectionChannels } from "../channels/stop_channels.ts";
import type { Config } from "../config/config.ts";
import {
  deleteConnection,
  insertConnection,
  listConnectionStatus,
  listStoredRefreshTokens,
  reauthorizeConnection,
  replaceStoredRefreshToken,
  requestSync,
} from "../storage/connections.ts";
import { migrate } from "../storage/migrate.ts";
import {
  findProvider,
  insertProvider,
  listProviders,
  setProviderAllowlisted,
} from "../storage/calendar_providers.ts";
import type { ProviderKind } from "../core/provider_kind.ts";
import { logger } from "../log/setup.ts";
import { createMetrics } from "../metrics/metrics.ts";
import { type Database, openDatabase, probeDatabase } from "../daemon/open_database.ts";
import { createChannelDeps, secretBoxFromConfig } from "../daemon/wiring.ts";
import { formatTable } from "./format.ts";
import { CommandError, UsageError } from "../core/errors.ts";

/** Where command output goes. */
export type CommandIo = { out: (text: string) => void };

/** Input problems (exit code 2) and failed commands (exit code 1). */
export { CommandError, UsageError };

/** Parsed options of a database command. */
export type CommandOptions = Record<string, string | boolean | undefined>;

function required(options: CommandOptions, name: string): string {
  const value = options[name];
  if (typeof value !== "string" || value.trim() === "") {
    throw new UsageError(`Missing required option --${name}`);
  }
  return value.trim();
}

function uuid(value: string, name: string): string {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value)) {
    throw new UsageError(`--${name} must be a connection id (a UUID), got "${value}"`);
  }
  return value;
}

function emit(io: CommandIo, json: boolean, value: unknown, text: string) {
  io.out(json ? JSON.stringify(value, null, 2) + "\n" : text);
}

/** Opens the database for a one-shot command, failing with one clear line if it is unreachable. */
export async function withDatabase<T>(
  config: Config,
  fn: (database: Database) => Promise<T>,
): Promise<T> {
  const database = await openDatabase(config, { max: 2, applicationName: "calsync-cli" });
  try {
    await probeDatabase(database, config.DB_CONNECT_TIMEOUT_MS + 1_000);
    await migrate(database.sql);
    return await fn(database);
  } finally {
    await database.close().catch(() => {});
  }
}

const REQUIRED: Record<string, string[]> = {
  "providers add": ["kind", "name"],
  "providers allowlist": ["provider"],
  "connections add": ["provider", "calendar", "refresh-token"],
  "connections reauth": ["connection", "refresh-token"],
  "connections remove": ["connection"],
  "sync": ["connection"],
};

/** Checks a command's options before any database work, so bad input never waits on a server. */
function validateOptions(key: string, options: CommandOptions): void {
  for (const name of REQUIRED[key] ?? []) required(options, name);
  if (key === "providers add" && options.kind !== "google" && options.kind !== "microsoft") {
    throw new UsageError(`--kind must be google or microsoft, got "${options.kind}"`);
  }
  if (typeof options.connection === "string") uuid(options.connection, "connection");
}

/** Runs a database command; returns nothing, throws UsageError/CommandError on failure. */
export async function runCommand(
  config: Config,
  command: string[],
  options: CommandOptions,
  io: CommandIo,
): Promise<void> {
  const json = options.json === true;
  const key = command.join(" ");
  if (key === "migrate") {
    const database = await openDatabase(config, { max: 1, applicationName: "calsync-migrate" });
    try {
      await probeDatabase(database, config.DB_CONNECT_TIMEOUT_MS + 1_000);
      const result = await migrate(database.sql);
      emit(
        io,
        json,
        result,
        result.applied.length === 0
          ? `Database is up to date (${result.alreadyApplied} migrations applied earlier)\n`
          : `Applied ${result.applied.join(", ")}\n`,
      );
    } finally {
      await database.close().catch(() => {});
    }
    return;
  }
  const handlers: Record<string, () => (database: Database) => Promise<void>> = {
    "providers add": () => async ({ sql }) => {
      const kind = required(options, "kind");
      if (kind !== "google" && kind !== "microsoft") {
        throw new UsageError(`--kind must be google or microsoft, got "${kind}"`);
      }
      const name = required(options, "name");
      try {
        const row = await insertProvider(sql, {
          kind: kind as ProviderKind,
          name,
          allowlisted: options.allowlisted === true,
        });
        emit(io, json, row, `${row.id}\n`);
      } catch (error) {
        if ((error as { code?: string }).code === "23505") {
          throw new CommandError(`A provider named "${name}" already exists`);
        }
        throw error;
      }
    },
    "providers list": () => async ({ sql }) => {
      const rows = await listProviders(sql);
      emit(io, json, rows, formatTable(rows, ["id", "kind", "name", "allowlisted"]));
    },
    "providers allowlist": () => async ({ sql }) => {
      const provider = await findProvider(sql, required(options, "provider"));
      if (!provider) throw new CommandError(`No provider "${options.provider}"`);
      const allowlisted = options.off !== true;
      await setProviderAllowlisted(sql, provider.id, allowlisted);
      emit(
        io,
        json,
        { id: provider.id, allowlisted },
        `${provider.name}: allowlisted=${allowlisted}\n`,
      );
    },
    "connections add": () => async ({ sql }) => {
      const provider = await findProvider(sql, required(options, "provider"));
      if (!provider) throw new CommandError(`No provider "${options.provider}"`);
      const calendar = required(options, "calendar");
      try {
        const row = await insertConnection(sql, {
          providerId: provider.id,
          externalCalendarId: calendar,
          refreshToken: await secrets.seal(required(options, "refresh-token")),
          accountLabel: typeof options.account === "string" ? options.account : null,
        });
        emit(io, json, row, `${row.id}\n`);
      } catch (error) {
        if ((error as { code?: string }).code === "23505") {
          throw new CommandError(
            `Provider "${provider.name}" already has a connection for calendar "${calendar}"`,
          );
        }
        throw error;
      }
    },
    "connections list": () => async ({ sql }) => {
      const rows = await listConnectionStatus(sql);
      emit(
        io,
        json,
        rows,
        formatTable(rows, [
          "id",
          "provider_name",
          "external_calendar_id",
          "account_label",
          "status",
          "sync_needed",
          "error_count",
          "backoff_until",
          "last_success_at",
        ]),
      );
    },
    "connections reauth": () => async ({ sql }) => {
      const id = uuid(required(options, "connection"), "connection");
      const sealed = await secrets.seal(required(options, "refresh-token"));
      const ok = await reauthorizeConnection(sql, id, sealed);
      if (!ok) throw new CommandError(`No connection "${id}"`);
      emit(io, json, { id, status: "active" }, `Connection ${id} re-authorised; sync requested\n`);
    },
    "connections remove": () => async ({ sql }) => {
      const id = uuid(required(options, "connection"), "connection");
      // Best effort: a channel left running keeps notifying until it expires, nothing worse.
      await stopConnectionChannels(createChannelDeps(config, sql, createMetrics()), id, {
        signal: AbortSignal.timeout(config.SYNC_HTTP_TIMEOUT_MS * 3),
      }).catch((error) =>
        logger("cli").warn("Cannot stop the channels of connection {connection_id}", {
          connection_id: id,
          error_message: (error as Error).message,
        })
      );
      const ok = await deleteConnection(sql, id);
      if (!ok) throw new CommandError(`No connection "${id}"`);
      emit(io, json, { id, removed: true }, `Connection ${id} removed with its events\n`);
    },
    "connections rotate-keys": () => async ({ sql }) => {
      if (!secrets.encrypting) {
        throw new CommandError(
          "CALSYNC_ENCRYPTION_KEY (or CALSYNC_ENCRYPTION_KEY_FILE) is not set: nothing to seal with",
        );
      }
      let resealed = 0;
      for (const row of await listStoredRefreshTokens(sql)) {
        if (!(await secrets.needsReseal(row.refresh_token))) continue;
        const sealed = await secrets.seal(await secrets.open(row.refresh_token));
        if (await replaceStoredRefreshToken(sql, row.id, row.refresh_token, sealed)) resealed++;
      }
      emit(
        io,
        json,
        { resealed },
        `Re-encrypted ${resealed} refresh tokens with the current key\n`,
      );
    },
    "sync": () => async ({ sql }) => {
      const id = uuid(required(options, "connection"), "connection");
      const ok = await requestSync(sql, id, {
        force: options.force === true,
        full: options.full === true,
      });
      if (!ok) throw new CommandError(`No connection "${id}"`);
      emit(io, json, { id, sync_requested: true }, `Sync requested for connection ${id}\n`);
    },
    "status": () => async ({ sql }) => {
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
      if (connectionId && rows.length === 0) {
        throw new CommandError(`No connection "${connectionId}"`);
      }
      const columns = [
        "id",
        "provider_id",
        "error_count",
        "last_error",
        "backoff_until",
        "sync_needed",
      ];
      emit(
        io,
        json,
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
    },
  };
  const secrets = secretBoxFromConfig(config);
  const handler = handlers[key];
  if (!handler) throw new UsageError(`Unknown command "${key}"`);
  validateOptions(key, options);
  await withDatabase(config, handler());
}
