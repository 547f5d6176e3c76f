/** @module `calsync connections add|list|reauth|remove|rotate-keys|release-deletions`. */
import { stopConnectionChannels } from "../channels/stop_channels.ts";
import { CommandError } from "../core/errors.ts";
import { createChannelDeps } from "../daemon/wiring.ts";
import { logger } from "../log/setup.ts";
import { createMetrics } from "../metrics/metrics.ts";
import { findProvider } from "../storage/calendar_providers.ts";
import { listAccountTokens, reauthorizeAccount, replaceAccountToken } from "../storage/accounts.ts";
import { connectAccountCalendars } from "../accounts/account_calendars.ts";
import { ConnectError } from "../core/errors.ts";
import { SyncFailure } from "../failures/failure.ts";
import { createConnectDeps } from "../daemon/connect_wiring.ts";
import { readRefreshTokenFile, refuseSecretArguments } from "./secret_input.ts";
import {
  deleteConnection,
  insertConnection,
  listConnectionStatus,
  listStoredRefreshTokens,
  reauthorizeConnection,
  replaceStoredRefreshToken,
} from "../storage/connections.ts";
import { type CommandHandler, connectionOption, required, uuid } from "./command_context.ts";
import {
  listStoredSubscriberSecrets,
  replaceStoredSubscriberSecret,
} from "../storage/subscribers.ts";
import {
  listStoredChannelSecrets,
  replaceStoredChannelSecret,
} from "../storage/webhook_channels.ts";
import { formatTable } from "./format.ts";
import { releaseDeletions } from "../sync/release_deletions.ts";

/**
 * Connects calendars. `--account ID --calendar ID|primary|all` adds them to a connected
 * account (discovery resolves primary and all); `--provider P --calendar ID
 * --refresh-token-file PATH|-` makes an account of a refresh token obtained elsewhere.
 */
export const addConnection: CommandHandler = async (context) => {
  const { options } = context;
  refuseSecretArguments(options);
  if (options["refresh-token-file"] === undefined && typeof options.account === "string") {
    return await addAccountConnections(context);
  }
  const { sql, secrets, emit } = context;
  const provider = await findProvider(sql, required(options, "provider"));
  if (!provider) throw new CommandError(`No provider "${options.provider}"`);
  const calendar = required(options, "calendar");
  const token = await readRefreshTokenFile(options);
  const label = typeof options.label === "string"
    ? options.label
    : typeof options.account === "string"
    ? options.account
    : null;
  const row = await insertConnection(sql, {
    providerId: provider.id,
    externalCalendarId: calendar,
    refreshToken: await secrets.seal(token),
    accountLabel: label,
  });
  emit(row, `${row.id}\n`);
};

async function addAccountConnections(
  { config, sql, options, emit }: Parameters<CommandHandler>[0],
): Promise<void> {
  const accountId = uuid(required(options, "account"), "account", "an account id");
  const calendar = required(options, "calendar");
  const added = await connectAccountCalendars(
    createConnectDeps(config, sql, createMetrics()),
    accountId,
    calendar,
    AbortSignal.timeout(config.SYNC_HTTP_TIMEOUT_MS * 3),
  ).catch((error) => {
    throw error instanceof ConnectError || error instanceof SyncFailure
      ? new CommandError(error.message)
      : error;
  });
  if (added === null) throw new CommandError(`No account "${accountId}"`);
  if (added.length === 0) {
    throw new CommandError(`Account ${accountId} already has a connection for "${calendar}"`);
  }
  emit(added, added.map((row) => `${row.id} ${row.external_calendar_id}\n`).join(""));
}

/** Lists every connection with its sync state. */
export const listConnections: CommandHandler = async ({ sql, emit }) => {
  const rows = await listConnectionStatus(sql);
  emit(
    rows,
    formatTable(rows, [
      "id",
      "provider_name",
      "account_id",
      "external_calendar_id",
      "account_label",
      "status",
      "sync_needed",
      "error_count",
      "backoff_until",
      "last_success_at",
    ]),
  );
};

/**
 * Stores a new refresh token (from a file or stdin) on the connection's account and makes the
 * account and its connections active again; a v1 row without an account gets it itself.
 */
export const reauthorize: CommandHandler = async ({ sql, options, secrets, emit }) => {
  refuseSecretArguments(options);
  const id = connectionOption(options);
  const sealed = await secrets.seal(await readRefreshTokenFile(options));
  const [row] = await listConnectionStatus(sql, { connectionId: id });
  if (!row) throw new CommandError(`No connection "${id}"`);
  if (row.account_id !== null) {
    const count = await reauthorizeAccount(sql, row.account_id, sealed);
    emit(
      { id, account_id: row.account_id, status: "active", reactivated: count },
      `Account ${row.account_id} re-authorised; ${count} connections sync again\n`,
    );
    return;
  }
  if (!(await reauthorizeConnection(sql, id, sealed))) {
    throw new CommandError(`No connection "${id}"`);
  }
  emit({ id, status: "active" }, `Connection ${id} re-authorised; sync requested\n`);
};

/** Stops the connection's channels (best effort), then removes it with its events. */
export const removeConnection: CommandHandler = async ({ config, sql, options, emit }) => {
  const id = connectionOption(options);
  // Best effort: a channel left running keeps notifying until it expires, nothing worse.
  await stopConnectionChannels(createChannelDeps(config, sql, createMetrics()), id, {
    signal: AbortSignal.timeout(config.SYNC_HTTP_TIMEOUT_MS * 3),
  }).catch((error) =>
    logger("cli").warn("Cannot stop the channels of connection {connection_id}", {
      connection_id: id,
      error_message: (error as Error).message,
    })
  );
  if (!(await deleteConnection(sql, id))) throw new CommandError(`No connection "${id}"`);
  emit({ id, removed: true }, `Connection ${id} removed with its events\n`);
};

/** Re-seals every stored secret (refresh tokens, channel secrets) with the current (first) key. */
export const rotateKeys: CommandHandler = async ({ sql, secrets, emit }) => {
  if (!secrets.encrypting) {
    throw new CommandError(
      "CALSYNC_ENCRYPTION_KEY (or CALSYNC_ENCRYPTION_KEY_FILE) is not set: nothing to seal with",
    );
  }
  const reseal = async (stored: string) =>
    await secrets.needsReseal(stored) ? await secrets.seal(await secrets.open(stored)) : null;
  let resealed = 0;
  for (const row of await listAccountTokens(sql)) {
    const sealed = await reseal(row.refresh_token);
    if (sealed && await replaceAccountToken(sql, row.id, row.refresh_token, sealed)) resealed++;
  }
  // v1 rows that migration 007 has not moved into an account yet (none once it has run).
  for (const row of await listStoredRefreshTokens(sql)) {
    const sealed = await reseal(row.refresh_token);
    if (sealed && await replaceStoredRefreshToken(sql, row.id, row.refresh_token, sealed)) {
      resealed++;
    }
  }
  let channels = 0;
  for (const row of await listStoredChannelSecrets(sql)) {
    const sealed = await reseal(row.secret);
    if (sealed && await replaceStoredChannelSecret(sql, row.id, row.secret, sealed)) channels++;
  }
  let subscribers = 0;
  for (const row of await listStoredSubscriberSecrets(sql)) {
    const sealed = await reseal(row.value);
    if (sealed === null) continue;
    const input = { id: row.id, column: row.column, expected: row.value, replacement: sealed };
    if (await replaceStoredSubscriberSecret(sql, input)) subscribers++;
  }
  emit(
    {
      resealed,
      channel_secrets_resealed: channels,
      subscriber_secrets_resealed: subscribers,
    },
    `Re-encrypted ${resealed} refresh tokens, ${channels} channel secrets and ${subscribers} ` +
      "subscriber signing secrets with the current key\n",
  );
};

/** Applies (or with `--discard` drops) the deletions the guard held, and syncs again. */
export const releaseHeldDeletions: CommandHandler = async ({ sql, options, emit }) => {
  const id = connectionOption(options);
  const discard = options.discard === true;
  const release = await releaseDeletions(sql, id, { discard });
  if (release === null) {
    const [row] = await listConnectionStatus(sql, { connectionId: id });
    if (!row) throw new CommandError(`No connection "${id}"`);
    throw new CommandError(`Connection ${id} is not holding deletions (status ${row.status})`);
  }
  emit(
    { id, ...release, status: "active" },
    discard
      ? `Discarded ${release.held} held deletions of connection ${id}; rows kept; sync requested\n`
      : `Deleted ${release.deleted} of ${release.held} held rows of connection ${id}; sync requested\n`,
  );
};
