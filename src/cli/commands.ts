/** @module Operator commands that talk to the database and exit: validation and dispatch. */
import type { Config } from "../config/config.ts";
import { CommandError, UsageError } from "../core/errors.ts";
import { type Database, openDatabase, probeDatabase } from "../daemon/open_database.ts";
import { secretBoxFromConfig } from "../daemon/wiring.ts";
import { migrate } from "../storage/migrate.ts";
import {
  type CommandHandler,
  type CommandIo,
  type CommandOptions,
  required,
  uuid,
} from "./command_context.ts";
import {
  addConnection,
  listConnections,
  reauthorize,
  releaseHeldDeletions,
  removeConnection,
  rotateKeys,
} from "./connection_commands.ts";
import { addProvider, allowlistProvider, listProvidersCommand } from "./provider_commands.ts";
import { eventsCommand } from "./event_commands.ts";
import { changesCommand } from "./change_commands.ts";
import {
  addSubscriberCommand,
  listSubscribersCommand,
  removeSubscriberCommand,
  replaySubscriberCommand,
  rotateSecretCommand,
  statusCommand as subscriberStatus,
} from "./subscriber_commands.ts";
import { statusCommand, syncCommand } from "./sync_commands.ts";
import {
  connectAccount,
  listAccountsCommand,
  listCalendarsCommand,
  removeAccountCommand,
} from "./account_commands.ts";
import { refuseSecretArguments } from "./secret_input.ts";

export type { CommandIo, CommandOptions } from "./command_context.ts";

/** Input problems (exit code 2) and failed commands (exit code 1). */
export { CommandError, UsageError };

/** Every database command, by its words. */
const COMMANDS: Record<string, { handler: CommandHandler; required?: string[] }> = {
  "providers add": { handler: addProvider, required: ["kind", "name"] },
  "providers list": { handler: listProvidersCommand },
  "providers allowlist": { handler: allowlistProvider, required: ["provider"] },
  "connections add": { handler: addConnection, required: ["calendar"] },
  "connections list": { handler: listConnections },
  "connections reauth": { handler: reauthorize, required: ["connection"] },
  "connections remove": { handler: removeConnection, required: ["connection"] },
  "connections rotate-keys": { handler: rotateKeys },
  "connections release-deletions": { handler: releaseHeldDeletions, required: ["connection"] },
  "sync": { handler: syncCommand, required: ["connection"] },
  "status": { handler: statusCommand },
  "events": { handler: eventsCommand, required: ["connection", "from", "to"] },
  "changes": { handler: changesCommand },
  "subscribers add": { handler: addSubscriberCommand, required: ["url"] },
  "subscribers list": { handler: listSubscribersCommand },
  "subscribers remove": { handler: removeSubscriberCommand, required: ["subscriber"] },
  "subscribers pause": { handler: subscriberStatus("paused"), required: ["subscriber"] },
  "subscribers resume": { handler: subscriberStatus("active"), required: ["subscriber"] },
  "subscribers replay": { handler: replaySubscriberCommand, required: ["subscriber"] },
  "subscribers rotate-secret": { handler: rotateSecretCommand, required: ["subscriber"] },
  "accounts connect": { handler: connectAccount, required: ["provider"] },
  "accounts list": { handler: listAccountsCommand },
  "accounts remove": { handler: removeAccountCommand, required: ["account"] },
  "calendars list": { handler: listCalendarsCommand, required: ["account"] },
};

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

/** Checks a command's options before any database work, so bad input never waits on a server. */
function validateOptions(key: string, options: CommandOptions): void {
  refuseSecretArguments(options);
  for (const name of COMMANDS[key]?.required ?? []) required(options, name);
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
  const emit = (value: unknown, text: string) =>
    io.out(json ? JSON.stringify(value, null, 2) + "\n" : text);
  const key = command.join(" ");
  if (key === "migrate") return await migrateCommand(config, emit);
  const entry = COMMANDS[key];
  if (!entry) throw new UsageError(`Unknown command "${key}"`);
  validateOptions(key, options);
  const secrets = secretBoxFromConfig(config);
  await withDatabase(
    config,
    ({ sql }) => entry.handler({ config, sql, options, secrets, emit, out: io.out }),
  );
}

/** `calsync migrate`: applies pending migrations and says what it did. */
async function migrateCommand(
  config: Config,
  emit: (value: unknown, text: string) => void,
): Promise<void> {
  const database = await openDatabase(config, { max: 1, applicationName: "calsync-migrate" });
  try {
    await probeDatabase(database, config.DB_CONNECT_TIMEOUT_MS + 1_000);
    const result = await migrate(database.sql);
    emit(
      result,
      result.applied.length === 0
        ? `Database is up to date (${result.alreadyApplied} migrations applied earlier)\n`
        : `Applied ${result.applied.join(", ")}\n`,
    );
  } finally {
    await database.close().catch(() => {});
  }
}
