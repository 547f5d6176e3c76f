/** @module `calsync accounts connect|list|remove` and `calsync calendars list`. */
import { accountCalendars } from "../accounts/account_calendars.ts";
import { startConnect } from "../accounts/connect_start.ts";
import { removeAccount } from "../accounts/remove_account.ts";
import { delay } from "../core/delay.ts";
import { CommandError, ConnectError } from "../core/errors.ts";
import { createConnectDeps } from "../daemon/connect_wiring.ts";
import { createChannelDeps } from "../daemon/wiring.ts";
import { createMetrics } from "../metrics/metrics.ts";
import { findAccount, listAccounts } from "../storage/accounts.ts";
import {
  CONNECT_CHANNEL,
  type ConnectCalendars,
  readConnectOutcome,
} from "../storage/connect_states.ts";
import { type CommandHandler, required, uuid } from "./command_context.ts";
import { formatTable } from "./format.ts";

const CALENDAR_MODES = new Set(["all", "primary", "none"]);

/** Prints the consent URL, then waits until the callback lands (or the state expires). */
export const connectAccount: CommandHandler = async ({ config, sql, options, emit }) => {
  const calendars = typeof options.calendars === "string" ? options.calendars : undefined;
  if (calendars !== undefined && !CALENDAR_MODES.has(calendars)) {
    throw new CommandError(`--calendars must be all, primary or none, got "${calendars}"`);
  }
  const deps = createConnectDeps(config, sql, createMetrics());
  const started = await startConnect(deps, {
    provider: required(options, "provider"),
    calendars: calendars as ConnectCalendars | undefined,
  }).catch((error) => {
    throw error instanceof ConnectError ? new CommandError(error.message) : error;
  });
  emit(
    { url: started.url, expires_at: started.expiresAt },
    `Open this URL in a browser and consent (valid until ${started.expiresAt.toISOString()}):\n` +
      `${started.url}\n`,
  );
  const outcome = await waitForOutcome(sql, started.stateHash, started.expiresAt);
  if (outcome === null) throw new CommandError("The connect flow expired before the callback");
  if (outcome.outcome === "failed") {
    throw new CommandError(`The connect flow failed: ${outcome.error}`);
  }
  const account = await findAccount(sql, outcome.account_id!);
  emit(account, `Connected account ${account?.id} (${account?.email ?? "no email"})\n`);
};

/** LISTEN wakes us when the daemon records the outcome; the poll covers a missed NOTIFY. */
async function waitForOutcome(
  sql: Parameters<CommandHandler>[0]["sql"],
  stateHash: string,
  expiresAt: Date,
) {
  const wake = { resolve: () => {} };
  const listener = await sql.listen(CONNECT_CHANNEL, (payload) => {
    if (payload === stateHash) wake.resolve();
  });
  try {
    while (Date.now() < expiresAt.getTime() + 1_000) {
      const outcome = await readConnectOutcome(sql, stateHash);
      if (outcome !== null) return outcome;
      const timer = new AbortController();
      await Promise.race([
        delay(2_000, timer.signal),
        new Promise<void>((resolve) => (wake.resolve = resolve)),
      ]);
      timer.abort();
    }
    return await readConnectOutcome(sql, stateHash);
  } finally {
    await listener.unlisten();
  }
}

/** Lists accounts (never their refresh tokens). */
export const listAccountsCommand: CommandHandler = async ({ sql, emit }) => {
  const rows = await listAccounts(sql);
  emit(
    rows,
    formatTable(rows, [
      "id",
      "provider_name",
      "email",
      "subject",
      "status",
      "connections",
      "created_at",
    ]),
  );
};

/** Lists the calendars an account can see, and which are connected. */
export const listCalendarsCommand: CommandHandler = async ({ config, sql, options, emit }) => {
  const accountId = uuid(required(options, "account"), "account", "an account id");
  const deps = createConnectDeps(config, sql, createMetrics());
  const calendars = await accountCalendars(
    deps,
    accountId,
    AbortSignal.timeout(config.SYNC_HTTP_TIMEOUT_MS * 3),
  );
  if (calendars === null) throw new CommandError(`No account "${accountId}"`);
  const rows = calendars.map((c) => ({
    id: c.id,
    name: c.name,
    primary: c.primary,
    access_role: c.accessRole,
    connected: c.connected,
  }));
  emit(rows, formatTable(rows, ["id", "name", "primary", "access_role", "connected"]));
};

/** Stops the channels of the account's connections, then removes it with them. */
export const removeAccountCommand: CommandHandler = async ({ config, sql, options, emit }) => {
  const accountId = uuid(required(options, "account"), "account", "an account id");
  const removed = await removeAccount(
    createChannelDeps(config, sql, createMetrics()),
    accountId,
    AbortSignal.timeout(config.SYNC_HTTP_TIMEOUT_MS * 3),
  );
  if (!removed) throw new CommandError(`No account "${accountId}"`);
  emit({ id: accountId, removed: true }, `Account ${accountId} removed with its connections\n`);
};
