/** @module SQL for `webhook_channels`: Google watch channels and Graph subscriptions. */
import { cancelOnAbort, type Sql } from "./client.ts";
import type { ProviderKind } from "../core/provider_kind.ts";

/** Where a channel is in its life; see migrations/002_webhook_channels.sql. */
export type ChannelStatus = "creating" | "active" | "stopping" | "removed";

/** A row of `webhook_channels`. */
export type ChannelRow = {
  id: string;
  connection_id: string;
  provider: ProviderKind;
  channel_id: string | null;
  secret: string;
  resource_id: string | null;
  expires_at: Date | null;
  status: ChannelStatus;
  next_work_at: Date | null;
  error_count: number;
  created_at: Date;
  renewed_at: Date | null;
};

/** What a webhook needs to authenticate a delivery. */
export type ChannelIdentity = {
  channelId: string;
  connectionId: string;
  secret: string;
  resourceId: string | null;
};

/** Looks channels up by provider channel id (Google channel id, Graph subscription id). */
export async function findChannels(
  sql: Sql,
  provider: ProviderKind,
  channelIds: readonly string[],
  signal?: AbortSignal,
): Promise<ChannelIdentity[]> {
  if (channelIds.length === 0) return [];
  const rows = await cancelOnAbort(
    sql<
      { channel_id: string; connection_id: string; secret: string; resource_id: string | null }[]
    >`
    select channel_id, connection_id, secret, resource_id from webhook_channels
    where provider = ${provider} and channel_id = any(${[...channelIds]}::text[])`,
    signal,
  );
  return rows.map((row) => ({
    channelId: row.channel_id,
    connectionId: row.connection_id,
    secret: row.secret,
    resourceId: row.resource_id,
  }));
}

/** Lists a connection's channels, oldest first. */
export async function listConnectionChannels(
  sql: Sql,
  connectionId: string,
): Promise<ChannelRow[]> {
  return await sql<ChannelRow[]>`
    select id, connection_id, provider, channel_id, secret, resource_id, expires_at, status,
      next_work_at, error_count, created_at, renewed_at
    from webhook_channels where connection_id = ${connectionId}
    order by created_at, id`;
}

/**
 * Records a channel before asking the provider for it. `next_work_at = now()` means a process
 * that dies before the provider answers leaves a row the next pass retries.
 */
export async function insertChannel(
  sql: Sql,
  input: {
    connectionId: string;
    provider: ProviderKind;
    channelId: string | null;
    secret: string;
  },
): Promise<ChannelRow> {
  const [row] = await sql<ChannelRow[]>`
    insert into webhook_channels (connection_id, provider, channel_id, secret, next_work_at)
    values (${input.connectionId}, ${input.provider}, ${input.channelId}, ${input.secret}, now())
    returning id, connection_id, provider, channel_id, secret, resource_id, expires_at, status,
      next_work_at, error_count, created_at, renewed_at`;
  return row;
}

/** Gives a retried Google creation a fresh channel id (Google rejects a reused one). */
export async function setChannelId(sql: Sql, rowId: string, channelId: string): Promise<void> {
  await sql`update webhook_channels set channel_id = ${channelId} where id = ${rowId}`;
}

/**
 * Marks a channel confirmed by the provider, fenced by the connection lease of the pass that
 * created it: a pass whose lease was taken over records nothing. Returns false when fenced off.
 */
export async function activateChannel(
  sql: Sql,
  input: {
    rowId: string;
    leaseOwner: string;
    channelId: string;
    resourceId: string | null;
    expiresAt: Date;
    nextWorkAt: Date;
  },
): Promise<boolean> {
  const rows = await sql`
    update webhook_channels w set
      channel_id = ${input.channelId}, resource_id = ${input.resourceId},
      expires_at = ${input.expiresAt}, next_work_at = ${input.nextWorkAt}, status = 'active',
      error_count = 0, last_error = null, renewed_at = now()
    from external_calendar_connections c
    where w.id = ${input.rowId} and c.id = w.connection_id and c.lease_owner = ${input.leaseOwner}
    returning w.id`;
  return rows.length === 1;
}

/** Records a renewal (Graph PATCH): new expiry and when to renew next. */
export async function renewChannel(
  sql: Sql,
  rowId: string,
  input: { expiresAt: Date; nextWorkAt: Date },
): Promise<void> {
  await sql`
    update webhook_channels set expires_at = ${input.expiresAt}, next_work_at = ${input.nextWorkAt},
      error_count = 0, last_error = null, renewed_at = now()
    where id = ${rowId}`;
}

/** Moves every other live channel of a connection to `stopping`, stopped at `stopAt`. */
export async function retireOtherChannels(
  sql: Sql,
  input: { connectionId: string; keepRowId: string; stopAt: Date },
): Promise<number> {
  const result = await sql`
    update webhook_channels set status = 'stopping', next_work_at = ${input.stopAt},
      error_count = 0, last_error = null
    where connection_id = ${input.connectionId} and id <> ${input.keepRowId}
      and status = 'active'`;
  return result.count;
}

/** Sets when a row next needs work (null: nothing until something else changes). */
export async function scheduleChannelWork(
  sql: Sql,
  rowId: string,
  nextWorkAt: Date | null,
): Promise<void> {
  await sql`update webhook_channels set next_work_at = ${nextWorkAt} where id = ${rowId}`;
}

/** Counts a failed provider call on a row and schedules the retry after `delayMs`. */
export async function recordChannelFailure(
  sql: Sql,
  rowId: string,
  failure: { lastError: Record<string, unknown>; delayMs: number },
): Promise<Date | null> {
  const rows = await sql<{ next_work_at: Date }[]>`
    update webhook_channels set
      error_count = error_count + 1,
      last_error = ${sql.json(failure.lastError as never)},
      next_work_at = now() + make_interval(secs => ${failure.delayMs / 1000})
    where id = ${rowId}
    returning next_work_at`;
  return rows[0]?.next_work_at ?? null;
}

/** Deletes a channel row (stopped, expired, or removed by the provider). */
export async function deleteChannel(sql: Sql, rowId: string): Promise<void> {
  await sql`delete from webhook_channels where id = ${rowId}`;
}

/** Every stored channel secret (for `rotate-keys`), oldest rows first. */
export async function listStoredChannelSecrets(
  sql: Sql,
): Promise<{ id: string; secret: string }[]> {
  return await sql<{ id: string; secret: string }[]>`
    select id, secret from webhook_channels order by created_at, id`;
}

/** Swaps a stored channel secret only if it is still `expected` (the row may be gone by now). */
export async function replaceStoredChannelSecret(
  sql: Sql,
  rowId: string,
  expected: string,
  replacement: string,
): Promise<boolean> {
  const rows = await sql`
    update webhook_channels set secret = ${replacement}
    where id = ${rowId} and secret = ${expected}
    returning id`;
  return rows.length === 1;
}
