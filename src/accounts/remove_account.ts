/** @module Removes an account: its connections' channels stopped first, then every row. */
import type { ChannelDeps } from "../channels/channel_deps.ts";
import { stopConnectionChannels } from "../channels/stop_channels.ts";
import { logger } from "../log/setup.ts";
import { accountConnectionIds, deleteAccount } from "../storage/accounts.ts";

const log = logger("accounts");

/**
 * Stops the channels of each of the account's connections (best effort, as `connections remove`
 * does), then deletes the account with its connections and their events. False: no such account.
 */
export async function removeAccount(
  deps: ChannelDeps,
  accountId: string,
  signal: AbortSignal,
): Promise<boolean> {
  for (const connectionId of await accountConnectionIds(deps.sql, accountId)) {
    await stopConnectionChannels(deps, connectionId, { signal }).catch((error) =>
      log.warn("Cannot stop the channels of connection {connection_id}", {
        connection_id: connectionId,
        account_id: accountId,
        error_message: (error as Error).message,
      })
    );
  }
  const removed = await deleteAccount(deps.sql, accountId);
  if (removed) {
    log.info("Removed account {account_id} with its connections", { account_id: accountId });
  }
  return removed;
}
