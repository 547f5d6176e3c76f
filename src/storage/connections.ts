/** @module SQL for `external_calendar_connections`: lifecycle, claims, leases and backoff state. */
import type { Sql, Tx } from "./client.ts";
import type { ProviderKind } from "../core/provider_kind.ts";
import { LeaseLostError } from "../core/errors.ts";

/** The channel the scheduler LISTENs on; the payload is a connection id. */
export const SYNC_CHANNEL = "calsync_sync_requested";

/** The drill's verification columns plus what operators need next to them. */
export type ConnectionStatusRow = {
  id: string;
  provider_id: string;
  provider_name: string;
  provider_kind: ProviderKind;
  external_calendar_id: string;
  account_label: string | null;
  status: string;
  error_count: number;
  last_error: unknown;
  backoff_until: Date | null;
  sync_needed: boolean;
  last_synced_at: Date | null;
  last_success_at: Date | null;
  lease_owner: string | null;
  lease_expires_at: Date | null;
};

/** A connection claimed for one sync run. `leaseOwner` fences every write of that run. */
export type ClaimedConnection = {
  id: string;
  providerId: string;
  providerKind: ProviderKind;
  providerName: string;
  externalCalendarId: string;
  refreshToken: string;
  syncCursor: unknown;
  errorCount: number;
  leaseOwner: string;
  /** A full sync was requested (Graph `missed`, `sync --full`): ignore the stored cursor. */
  fullSyncRequested: boolean;
};

/** Raised inside a write transaction when this run no longer holds the connection's lease. */
export { LeaseLostError };

/** Inserts a connection that is due at once for its first (full) sync. */
export async function insertConnection(
  sql: Sql,
  input: {
    providerId: string;
    externalCalendarId: string;
    refreshToken: string;
    accountLabel: string | null;
  },
): Promise<{ id: string }> {
  const [row] = await sql<{ id: string }[]>`
    with inserted as (
      insert into external_calendar_connections
        (provider_id, external_calendar_id, refresh_token, account_label)
      values (${input.providerId}, ${input.externalCalendarId}, ${input.refreshToken},
        ${input.accountLabel})
      returning id
    )
    select id, pg_notify(${SYNC_CHANNEL}, id::text) from inserted`;
  return { id: row.id };
}

/** Lists connections with the drill's verification columns; optionally one connection. */
export async function listConnectionStatus(
  sql: Sql,
  filter: { connectionId?: string; providerId?: string } = {},
): Promise<ConnectionStatusRow[]> {
  return await sql<ConnectionStatusRow[]>`
    select c.id, c.provider_id, p.name as provider_name, p.kind as provider_kind,
      c.external_calendar_id, c.account_label, c.status, c.error_count, c.last_error,
      c.backoff_until, c.sync_needed, c.last_synced_at, c.last_success_at, c.lease_owner,
      c.lease_expires_at
    from external_calendar_connections c join calendar_providers p on p.id = c.provider_id
    where (${filter.connectionId ?? null}::uuid is null or c.id = ${filter.connectionId ?? null})
      and (${filter.providerId ?? null}::uuid is null or c.provider_id = ${
    filter.providerId ?? null
  })
    order by c.created_at, c.id`;
}

/**
 * Requests a sync and wakes the scheduler, in one statement (one statement is one transaction).
 * A pending backoff still holds unless `force` is set; a running sync is followed by one more.
 */
export async function requestSync(
  sql: Sql | Tx,
  connectionId: string,
  options: { force?: boolean; full?: boolean } = {},
): Promise<boolean> {
  const force = options.force ?? false;
  const full = options.full ?? false;
  const rows = await sql`
    with requested as (
      update external_calendar_connections c set
        full_sync_requested_seq = case when ${full} then c.sync_requested_seq + 1
          else c.full_sync_requested_seq end,
        backoff_until = case when ${force} then null else c.backoff_until end,
        ${syncRequestAssignments(sql, { force })}
      where c.id = ${connectionId}
      returning c.id
    )
    select id, pg_notify(${SYNC_CHANNEL}, id::text) from requested`;
  return rows.length === 1;
}

/**
 * The SET list of every sync request (the table aliased `c`): one more request, and the rule for
 * when it is due, written once: a running sync's lease is waited out (that run goes again when it
 * completes), a backoff is respected unless forced, otherwise now. Webhook statements embed it
 * so a delivery stays one round trip.
 */
export function syncRequestAssignments(sql: Sql | Tx, options: { force?: boolean } = {}) {
  const forced = options.force ? sql`when true then now()` : sql``;
  return sql`
    sync_requested_seq = c.sync_requested_seq + 1,
    due_at = case
      when c.lease_owner is not null and c.lease_expires_at > now() then c.lease_expires_at
      ${forced}
      else greatest(now(), coalesce(c.backoff_until, now())) end,
    sync_needed = true,
    updated_at = now()`;
}

/** How a claim leases rows: how many, for how long, under which owner, for which providers. */
export type LeaseClaim = {
  limit: number;
  leaseMs: number;
  /** Each claimed row's lease owner is this prefix plus the row id. */
  ownerPrefix: string;
  allowlist: readonly string[] | null;
};

/**
 * Claims up to `limit` due connections with a lease. SKIP LOCKED keeps replicas off each other's
 * rows; moving `due_at` to the lease expiry keeps claimed rows out of the front of the index.
 */
export async function claimDueConnections(
  sql: Sql,
  options: LeaseClaim,
): Promise<ClaimedConnection[]> {
  const allow = options.allowlist === null ? null : [...options.allowlist];
  const rows = await sql<ClaimedRow[]>`
    with due as (
      select c.id from external_calendar_connections c
      join calendar_providers p on p.id = c.provider_id
      where c.sync_needed and c.status = 'active' and c.due_at <= now()
        and (c.backoff_until is null or c.backoff_until <= now())
        and (c.lease_expires_at is null or c.lease_expires_at <= now())
        and p.allowlisted
        and (${allow}::text[] is null or p.kind = any(${allow}::text[])
          or p.name = any(${allow}::text[]))
      order by c.due_at
      limit ${options.limit}
      for update of c skip locked
    )
    update external_calendar_connections c set
      lease_owner = ${options.ownerPrefix} || ':' || c.id::text,
      lease_expires_at = now() + make_interval(secs => ${options.leaseMs / 1000}),
      due_at = now() + make_interval(secs => ${options.leaseMs / 1000}),
      sync_claimed_seq = c.sync_requested_seq
    from due, calendar_providers p
    where c.id = due.id and p.id = c.provider_id
    returning ${claimedColumns(sql)}`;
  return rows.map(toClaimedConnection);
}

/** The columns a claim returns; shared by every statement that takes a connection's lease. */
export type ClaimedRow = {
  id: string;
  provider_id: string;
  kind: ProviderKind;
  name: string;
  external_calendar_id: string;
  refresh_token: string;
  sync_cursor: unknown;
  error_count: number;
  lease_owner: string;
  full_sync_requested: boolean;
};

/** The RETURNING list of a claim (aliases `c` and `p`), matching ClaimedRow. */
export function claimedColumns(sql: Sql) {
  return sql`c.id, c.provider_id, p.kind, p.name, c.external_calendar_id, c.refresh_token,
    c.sync_cursor, c.error_count, c.lease_owner,
    c.full_sync_requested_seq is not null
      and c.full_sync_requested_seq <= c.sync_claimed_seq as full_sync_requested`;
}

/** Maps a claimed row to the run's view of its connection. */
export function toClaimedConnection(row: ClaimedRow): ClaimedConnection {
  return {
    id: row.id,
    providerId: row.provider_id,
    providerKind: row.kind,
    providerName: row.name,
    externalCalendarId: row.external_calendar_id,
    refreshToken: row.refresh_token,
    syncCursor: row.sync_cursor,
    errorCount: row.error_count,
    leaseOwner: row.lease_owner,
    fullSyncRequested: row.full_sync_requested,
  };
}

/** First statement of every write transaction of a run: proves the lease and extends it. */
export async function fenceLease(
  tx: Tx,
  connection: { id: string; leaseOwner: string },
  leaseMs: number,
): Promise<void> {
  const rows = await tx`
    update external_calendar_connections set
      lease_expires_at = now() + make_interval(secs => ${leaseMs / 1000}),
      due_at = now() + make_interval(secs => ${leaseMs / 1000})
    where id = ${connection.id} and lease_owner = ${connection.leaseOwner}
    returning id`;
  if (rows.length !== 1) throw new LeaseLostError(connection.id);
}

/** Stores the cursor that resumes after a committed chunk (inside the chunk's transaction). */
export async function storeCursor(tx: Tx, connectionId: string, cursor: unknown): Promise<void> {
  await tx`
    update external_calendar_connections set sync_cursor = ${tx.json(cursor as never)},
      updated_at = now()
    where id = ${connectionId}`;
}

/**
 * Marks a sync complete (inside its last transaction, or alone when the run writes nothing else):
 * clears the backoff state, releases the lease, and keeps `sync_needed` only if a request arrived
 * after the claim. Fenced by the lease, so on its own it is also a correct last write.
 */
export async function completeSync(
  tx: Tx | Sql,
  connection: { id: string; leaseOwner: string },
  cursor: unknown,
): Promise<{ syncNeeded: boolean }> {
  const rows = await tx<{ sync_needed: boolean }[]>`
    update external_calendar_connections set
      sync_cursor = ${tx.json(cursor as never)},
      sync_needed = sync_requested_seq > sync_claimed_seq,
      full_sync_requested_seq = case when full_sync_requested_seq > sync_claimed_seq
        then full_sync_requested_seq end,
      due_at = now(),
      error_count = 0,
      backoff_until = null,
      last_synced_at = now(),
      last_success_at = now(),
      lease_owner = null,
      lease_expires_at = null,
      updated_at = now()
    where id = ${connection.id} and lease_owner = ${connection.leaseOwner}
    returning sync_needed`;
  if (rows.length !== 1) throw new LeaseLostError(connection.id);
  return { syncNeeded: rows[0].sync_needed };
}

/** Records a failed sync: one more error, why, and when to try again; releases the lease. */
export async function recordSyncFailure(
  sql: Sql,
  connection: { id: string; leaseOwner: string },
  failure: { lastError: Record<string, unknown>; delayMs: number; clearCursor?: boolean },
): Promise<{ errorCount: number; backoffUntil: Date } | null> {
  const clear = failure.clearCursor ?? false;
  const rows = await sql<{ error_count: number; backoff_until: Date }[]>`
    update external_calendar_connections set
      error_count = error_count + 1,
      last_error = ${sql.json(failure.lastError as never)},
      backoff_until = now() + make_interval(secs => ${failure.delayMs / 1000}),
      due_at = now() + make_interval(secs => ${failure.delayMs / 1000}),
      sync_needed = true,
      sync_cursor = case when ${clear} then null else sync_cursor end,
      last_synced_at = now(),
      lease_owner = null,
      lease_expires_at = null,
      updated_at = now()
    where id = ${connection.id} and lease_owner = ${connection.leaseOwner}
    returning error_count, backoff_until`;
  return rows[0] ? { errorCount: rows[0].error_count, backoffUntil: rows[0].backoff_until } : null;
}

/** Stops syncing a connection until an operator re-authorises it. */
export async function markReauthRequired(
  sql: Sql,
  connection: { id: string; leaseOwner: string },
  lastError: Record<string, unknown>,
): Promise<{ errorCount: number } | null> {
  const rows = await sql<{ error_count: number }[]>`
    update external_calendar_connections set
      status = 'reauth_required',
      error_count = error_count + 1,
      last_error = ${sql.json(lastError as never)},
      backoff_until = null,
      sync_needed = true,
      last_synced_at = now(),
      lease_owner = null,
      lease_expires_at = null,
      updated_at = now()
    where id = ${connection.id} and lease_owner = ${connection.leaseOwner}
    returning error_count`;
  return rows[0] ? { errorCount: rows[0].error_count } : null;
}

/** Gives a lease back without counting a failure (shutdown, database trouble). */
export async function releaseLease(
  sql: Sql,
  connection: { id: string; leaseOwner: string },
  retryInMs = 0,
): Promise<void> {
  await sql`
    update external_calendar_connections set
      lease_owner = null, lease_expires_at = null,
      due_at = now() + make_interval(secs => ${retryInMs / 1000}), updated_at = now()
    where id = ${connection.id} and lease_owner = ${connection.leaseOwner}`;
}

/** Replaces a rotated refresh token, fenced by the run's lease, in its own short transaction. */
export async function storeRefreshToken(
  sql: Sql,
  connection: { id: string; leaseOwner: string },
  refreshToken: string,
): Promise<boolean> {
  const rows = await sql`
    update external_calendar_connections set refresh_token = ${refreshToken}, updated_at = now()
    where id = ${connection.id} and lease_owner = ${connection.leaseOwner}
    returning id`;
  return rows.length === 1;
}

/** Every connection's stored (possibly sealed) refresh token, for key rotation. */
export async function listStoredRefreshTokens(
  sql: Sql,
): Promise<{ id: string; refresh_token: string }[]> {
  return await sql<{ id: string; refresh_token: string }[]>`
    select id, refresh_token from external_calendar_connections order by id`;
}

/** Swaps a stored refresh token only if it is still `expected` (a concurrent rotation wins). */
export async function replaceStoredRefreshToken(
  sql: Sql,
  connectionId: string,
  expected: string,
  replacement: string,
): Promise<boolean> {
  const rows = await sql`
    update external_calendar_connections set refresh_token = ${replacement}, updated_at = now()
    where id = ${connectionId} and refresh_token = ${expected}
    returning id`;
  return rows.length === 1;
}

/** Re-authorises a connection with a new refresh token and requests a sync. */
export async function reauthorizeConnection(
  sql: Sql,
  connectionId: string,
  refreshToken: string,
): Promise<boolean> {
  const rows = await sql`
    with updated as (
      update external_calendar_connections set
        refresh_token = ${refreshToken}, status = 'active', sync_needed = true,
        sync_requested_seq = sync_requested_seq + 1, backoff_until = null, due_at = now(),
        lease_owner = null, lease_expires_at = null, updated_at = now()
      where id = ${connectionId}
      returning id
    )
    select id, pg_notify(${SYNC_CHANNEL}, id::text) from updated`;
  return rows.length === 1;
}

/** Deletes a connection; its events and dedupe keys go with it (ON DELETE CASCADE). */
export async function deleteConnection(sql: Sql, connectionId: string): Promise<boolean> {
  const rows = await sql`
    delete from external_calendar_connections where id = ${connectionId} returning id`;
  return rows.length === 1;
}

/** Counts connections by operational state for the gauge. */
export async function countConnectionsByState(
  sql: Sql,
): Promise<{ due: number; backoff: number; reauth_required: number; idle: number }> {
  const [row] = await sql<
    { due: number; backoff: number; reauth_required: number; idle: number }[]
  >`
    select
      count(*) filter (where status = 'active' and sync_needed
        and (backoff_until is null or backoff_until <= now()))::int as due,
      count(*) filter (where status = 'active' and backoff_until > now())::int as backoff,
      count(*) filter (where status = 'reauth_required')::int as reauth_required,
      count(*) filter (where status = 'active' and not sync_needed)::int as idle
    from external_calendar_connections`;
  return row;
}

/**
 * Claims connections that need channel work under the connection's own lease, the one a sync
 * takes. Holding it serialises this pass with syncs of the same connection, so only one of them
 * refreshes (and, for Microsoft, rotates) the refresh token at a time, and the rotated token is
 * stored through the usual fenced write. Work is due when a row's `next_work_at` has passed, or
 * when an active connection has no live (creating/active) channel at all. `connectionId` claims
 * one connection whatever its channels (removal), if no one else holds its lease.
 */
export async function claimConnectionsForChannelWork(
  sql: Sql,
  options: LeaseClaim & { connectionId?: string },
): Promise<ClaimedConnection[]> {
  const allow = options.allowlist === null ? null : [...options.allowlist];
  const only = options.connectionId ?? null;
  const rows = await sql<ClaimedRow[]>`
    with due as (
      select c.id from external_calendar_connections c
      join calendar_providers p on p.id = c.provider_id
      where (c.lease_expires_at is null or c.lease_expires_at <= now())
        and (
          c.id = ${only}::uuid
          or (${only}::uuid is null and c.status = 'active' and p.allowlisted
            and (${allow}::text[] is null or p.kind = any(${allow}::text[])
              or p.name = any(${allow}::text[]))
            and (
              exists (select 1 from webhook_channels w
                where w.connection_id = c.id and w.next_work_at <= now())
              or not exists (select 1 from webhook_channels w
                where w.connection_id = c.id and w.status in ('creating', 'active'))
            ))
        )
      order by c.id
      limit ${options.limit}
      for update of c skip locked
    )
    update external_calendar_connections c set
      lease_owner = ${options.ownerPrefix} || ':' || c.id::text,
      lease_expires_at = now() + make_interval(secs => ${options.leaseMs / 1000})
    from due, calendar_providers p
    where c.id = due.id and p.id = c.provider_id
    returning ${claimedColumns(sql)}`;
  return rows.map(toClaimedConnection);
}
