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
  account_id: string | null;
  external_calendar_id: string;
  account_label: string | null;
  status: string;
  error_count: number;
  last_error: unknown;
  backoff_until: Date | null;
  sync_needed: boolean;
  last_synced_at: Date | null;
  last_success_at: Date | null;
  last_notification_at: Date | null;
  last_verified_at: Date | null;
  due_at: Date;
  held_deletions: number;
  lease_owner: string | null;
  lease_expires_at: Date | null;
};

/** A connection claimed for one sync run. `leaseOwner` fences every write of that run. */
export type ClaimedConnection = {
  id: string;
  providerId: string;
  providerKind: ProviderKind;
  providerName: string;
  /** The account whose refresh token this connection uses; null for a v1 row not yet moved. */
  accountId: string | null;
  externalCalendarId: string;
  /** The account's sealed refresh token (a v1 row's own until migration 007 moves it). */
  refreshToken: string;
  syncCursor: unknown;
  errorCount: number;
  leaseOwner: string;
  /** A full sync was requested (Graph `missed`, `sync --full`): ignore the stored cursor. */
  fullSyncRequested: boolean;
  /** A sync was requested (webhook, CLI); false when only the poll made it due. */
  requested: boolean;
  /** Reconciliation is due and the connection is not in an error streak (never in backoff). */
  reconcileDue: boolean;
  /** The connection has a confirmed, unexpired push channel. */
  hasLivePush: boolean;
  lastNotificationAt: Date | null;
  /** The previous failure, for counting consecutive rejections. */
  lastError: Record<string, unknown> | null;
  /** The operator's account label (the mailbox, for Graph's per-mailbox limit). */
  accountLabel?: string | null;
};

/** Raised inside a write transaction when this run no longer holds the connection's lease. */
export { LeaseLostError };

/**
 * Inserts a connection that is due at once for its first (full) sync. It belongs to `accountId`,
 * or, given a (sealed) `refreshToken` instead, to a new account holding that token, created in
 * the same statement.
 */
export async function insertConnection(
  sql: Sql | Tx,
  input: {
    providerId: string;
    externalCalendarId: string;
    accountLabel: string | null;
  } & ({ accountId: string; refreshToken?: undefined } | { refreshToken: string }),
): Promise<{ id: string; accountId: string }> {
  const accountId = "accountId" in input ? input.accountId ?? null : null;
  const token = accountId === null ? input.refreshToken ?? null : null;
  const [row] = await sql<{ id: string; account_id: string }[]>`
    with account as (
      insert into calendar_accounts (provider_id, refresh_token, label)
      select ${input.providerId}, ${token}::text, ${input.accountLabel}
      where ${token}::text is not null
      returning id
    ),
    inserted as (
      insert into external_calendar_connections
        (provider_id, account_id, external_calendar_id, account_label)
      values (${input.providerId},
        coalesce(${accountId}::uuid, (select id from account)), ${input.externalCalendarId},
        ${input.accountLabel})
      returning id, account_id
    )
    select id, account_id, pg_notify(${SYNC_CHANNEL}, id::text) from inserted`;
  return { id: row.id, accountId: row.account_id };
}

/**
 * Connects calendars of an account (consent, `connections add --calendar all`); calendars it
 * already has are left as they are. Each new connection is due at once for its first full sync.
 */
export async function insertAccountConnections(
  sql: Sql | Tx,
  input: { providerId: string; accountId: string; calendarIds: string[]; label: string | null },
): Promise<{ id: string; external_calendar_id: string }[]> {
  if (input.calendarIds.length === 0) return [];
  return await sql<{ id: string; external_calendar_id: string }[]>`
    with inserted as (
      insert into external_calendar_connections
        (provider_id, account_id, external_calendar_id, account_label)
      select ${input.providerId}, ${input.accountId}, calendar, ${input.label}
      from unnest(${input.calendarIds}::text[]) as calendar
      on conflict (account_id, external_calendar_id) do nothing
      returning id, external_calendar_id
    )
    select id, external_calendar_id, pg_notify(${SYNC_CHANNEL}, id::text) from inserted`;
}

/** The external calendar ids an account already has connections for. */
export async function connectedCalendarIds(sql: Sql, accountId: string): Promise<Set<string>> {
  const rows = await sql<{ external_calendar_id: string }[]>`
    select external_calendar_id from external_calendar_connections
    where account_id = ${accountId}`;
  return new Set(rows.map((row) => row.external_calendar_id));
}

/** Lists connections with the drill's verification columns; optionally one connection. */
export async function listConnectionStatus(
  sql: Sql,
  filter: { connectionId?: string; providerId?: string } = {},
): Promise<ConnectionStatusRow[]> {
  return await sql<ConnectionStatusRow[]>`
    select c.id, c.provider_id, p.name as provider_name, p.kind as provider_kind, c.account_id,
      c.external_calendar_id, c.account_label, c.status, c.error_count, c.last_error,
      c.backoff_until, c.sync_needed, c.last_synced_at, c.last_success_at,
      c.last_notification_at, c.last_verified_at, c.due_at,
      (select count(*) from held_event_deletions h where h.connection_id = c.id)::int
        as held_deletions,
      c.lease_owner, c.lease_expires_at
    from external_calendar_connections c join calendar_providers p on p.id = c.provider_id
    where (${filter.connectionId ?? null}::uuid is null or c.id = ${filter.connectionId ?? null})
      and (${filter.providerId ?? null}::uuid is null or c.provider_id = ${
    filter.providerId ?? null
  })
    order by c.created_at, c.id`;
}

/**
 * A page of connections (admin API) after the id `after`, optionally of one account. Pages go by
 * id: unique and stable, so a cursor never repeats or skips a row.
 */
export async function listConnectionsPage(
  sql: Sql,
  page: { limit: number; after?: string; accountId?: string },
): Promise<(ConnectionStatusRow & { created_at: Date })[]> {
  const after = page.after ?? null;
  const account = page.accountId ?? null;
  return await sql<(ConnectionStatusRow & { created_at: Date })[]>`
    select c.id, c.provider_id, p.name as provider_name, p.kind as provider_kind, c.account_id,
      c.external_calendar_id, c.account_label, c.status, c.error_count, c.last_error,
      c.backoff_until, c.sync_needed, c.last_synced_at, c.last_success_at,
      c.last_notification_at, c.last_verified_at, c.due_at,
      (select count(*) from held_event_deletions h where h.connection_id = c.id)::int
        as held_deletions,
      c.lease_owner, c.lease_expires_at, c.created_at
    from external_calendar_connections c join calendar_providers p on p.id = c.provider_id
    where (${account}::uuid is null or c.account_id = ${account}::uuid)
      and (${after}::uuid is null or c.id > ${after}::uuid)
    order by c.id
    limit ${page.limit}`;
}

/** States `sync --force` leaves: the operator says the cause is fixed. Held deletions are not. */
export const FORCE_LEAVES_STATES = ["calendar_unavailable", "disabled", "reauth_required"];

/**
 * Requests a sync and wakes the scheduler, in one statement (one statement is one transaction).
 * A pending backoff still holds unless `force` is set; a running sync is followed by one more.
 * `force` also makes a connection in a terminal state (FORCE_LEAVES_STATES) active again, with a
 * fresh error count so its rejections are counted anew.
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
        error_count = case when ${force} and c.status = any(${FORCE_LEAVES_STATES}::text[])
          then 0 else c.error_count end,
        status = case when ${force} and c.status = any(${FORCE_LEAVES_STATES}::text[])
          then 'active' else c.status end,
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
export function syncRequestAssignments(
  sql: Sql | Tx,
  options: { force?: boolean; notification?: boolean } = {},
) {
  const forced = options.force ? sql`when true then now()` : sql``;
  // A push notification also proves its channel is alive (freshness, push-missed detection).
  const notified = options.notification ? sql`last_notification_at = now(),` : sql``;
  return sql`
    ${notified}
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
 * Claims up to `limit` due connections of every provider with a lease, the earliest due first.
 * SKIP LOCKED keeps replicas off each other's rows while they claim; the lease keeps them off
 * while a run holds it. Each provider is one range scan of migration 009's claim index, as in a
 * lane's claim (the only index that holds `due_at`); its rows beyond the overall limit are locked
 * for this statement only.
 * A connection is due when a sync was requested, or when its poll or reconciliation time (the
 * `due_at` its last completion set) has come; rows not yet scheduled by migration 006's backfill
 * (`reconcile_due_at` null) wait for it, so an upgrade does not make every connection due at once.
 */
export async function claimDueConnections(
  sql: Sql,
  options: LeaseClaim,
): Promise<ClaimedConnection[]> {
  const rows = await claimStatement(sql, options) as unknown as ClaimedRow[];
  return rows.map(toClaimedConnection);
}

/**
 * When an active connection `c` is due: a sync was requested, or its poll or reconciliation time
 * has come; never in backoff nor under another run's lease. Written once for every claim.
 */
function dueConnection(sql: Sql) {
  return sql`c.status = 'active' and c.due_at <= now()
    and (c.sync_needed or c.reconcile_due_at is not null)
    and (c.backoff_until is null or c.backoff_until <= now())
    and (c.lease_expires_at is null or c.lease_expires_at <= now())`;
}

/**
 * Claims up to `limit` due connections of one provider kind: its lane. Each provider row is one
 * range scan of migration 009's `(provider_id, due_at) where status = 'active'` index, so a
 * provider with a deep backlog (a full lane, an open breaker) costs another's claim nothing. A
 * provider whose breaker is not closed is skipped, except for its one `probe`.
 */
export async function claimDueForProvider(
  sql: Sql,
  options: ProviderClaim,
): Promise<ClaimedConnection[]> {
  const rows = await claimStatement(sql, options) as unknown as ClaimedRow[];
  return rows.map(toClaimedConnection);
}

/**
 * A per-provider claim: one lane's kind, whether it is the breaker's probe, and at most how many
 * of one account's connections may hold a lease at once, across replicas (Graph's per-mailbox
 * concurrency).
 */
export type ProviderClaim = LeaseClaim & {
  kind: ProviderKind;
  probe?: boolean;
  perAccount?: number;
};

/**
 * Skips a connection whose account already has `perAccount` leased connections (syncs or
 * channel work, on any replica). Two claims running at the same moment can each take one more;
 * each replica's mailbox slots queue what a single claim took beyond the limit.
 */
function accountHasRoom(sql: Sql, options: { perAccount?: number }) {
  if (options.perAccount === undefined) return sql``;
  return sql`and (c.account_id is null or (select count(*) from external_calendar_connections o
    where o.account_id = c.account_id and o.lease_expires_at > now()) < ${options.perAccount})`;
}

/**
 * Runs a claim (a lane's with `kind`, else across providers) under EXPLAIN (ANALYZE, BUFFERS) and
 * returns the plan's lines, so the bench shows the very statement the scheduler runs (it claims
 * rows, like a real claim).
 */
export async function explainClaim(
  sql: Sql,
  options: LeaseClaim | ProviderClaim,
): Promise<string[]> {
  const rows = await sql<{ "QUERY PLAN": string }[]>`
    explain (analyze, buffers, costs off) ${claimStatement(sql, options)}`;
  return rows.map((row) => row["QUERY PLAN"]);
}

/**
 * One claim statement for both claims. With `kind` it is a lane's: that provider only, skipped
 * while its breaker is not closed unless this is its `probe`. Without, it takes every provider's
 * earliest due rows and keeps the earliest overall.
 */
function claimStatement(sql: Sql, options: LeaseClaim | ProviderClaim) {
  const allow = options.allowlist === null ? null : [...options.allowlist];
  const lane = "kind" in options ? options : null;
  return sql`
    with due as (
      select d.id from calendar_providers p
      cross join lateral (
        select c.id, c.due_at from external_calendar_connections c
        where c.provider_id = p.id and ${dueConnection(sql)} ${accountHasRoom(sql, lane ?? {})}
        order by c.due_at
        limit ${options.limit}
        for update of c skip locked
      ) d
      where p.allowlisted
        and (${allow}::text[] is null or p.kind = any(${allow}::text[])
          or p.name = any(${allow}::text[]))
        ${lane ? laneProvider(sql, lane) : sql``}
      ${lane ? sql`` : sql`order by d.due_at`}
      limit ${options.limit}
    )
    update external_calendar_connections c set ${leaseAssignments(sql, options)}
    from due, calendar_providers p
    where c.id = due.id and p.id = c.provider_id
    returning ${claimedColumns(sql)}`;
}

/** A lane's provider `p`: its kind, and a closed breaker unless the claim is the probe. */
function laneProvider(sql: Sql, lane: ProviderClaim) {
  return sql`and p.kind = ${lane.kind}
    and (${lane.probe ?? false} or not exists (select 1 from provider_health h
      where h.provider = p.kind and h.state <> 'closed'))`;
}

/**
 * The SET list of a claim (the table aliased `c`): the lease and the requests this run covers.
 * No indexed column changes, so the claim is a heap-only (HOT) update wherever its page has
 * room: no new entry in any index, half the index churn of a sync. The claimed row keeps its
 * place at the front of the due indexes; every claim's lease filter steps over it (at most the
 * rows in flight), and its completion moves it on.
 */
function leaseAssignments(sql: Sql, options: Pick<LeaseClaim, "ownerPrefix" | "leaseMs">) {
  const secs = options.leaseMs / 1000;
  return sql`
    lease_owner = ${options.ownerPrefix} || ':' || c.id::text,
    lease_expires_at = now() + make_interval(secs => ${secs}),
    sync_claimed_seq = c.sync_requested_seq`;
}

/** The columns a claim returns; shared by every statement that takes a connection's lease. */
export type ClaimedRow = {
  id: string;
  provider_id: string;
  kind: ProviderKind;
  name: string;
  account_id: string | null;
  external_calendar_id: string;
  refresh_token: string;
  sync_cursor: unknown;
  error_count: number;
  lease_owner: string;
  full_sync_requested: boolean;
  requested: boolean;
  reconcile_due: boolean;
  has_live_push: boolean;
  last_notification_at: Date | null;
  last_error: Record<string, unknown> | null;
  account_label?: string | null;
};

/** The RETURNING list of a claim (aliases `c` and `p`), matching ClaimedRow. */
export function claimedColumns(sql: Sql) {
  // The account's token: one refresh token serves all of an account's calendars.
  return sql`c.id, c.provider_id, p.kind, p.name, c.account_id, c.external_calendar_id,
    coalesce((select a.refresh_token from calendar_accounts a where a.id = c.account_id),
      c.refresh_token) as refresh_token,
    c.sync_cursor, c.error_count, c.lease_owner,
    c.full_sync_requested_seq is not null
      and c.full_sync_requested_seq <= c.sync_claimed_seq as full_sync_requested,
    c.sync_needed as requested,
    c.error_count = 0 and c.reconcile_due_at is not null and c.reconcile_due_at <= now()
      as reconcile_due,
    ${livePushChannel(sql)} as has_live_push,
    c.last_notification_at, c.last_error, c.account_label`;
}

/** True when connection `c` has a confirmed, unexpired push channel. */
function livePushChannel(sql: Sql | Tx) {
  return sql`exists (select 1 from webhook_channels w where w.connection_id = c.id
    and w.status = 'active' and (w.expires_at is null or w.expires_at > now()))`;
}

/** Maps a claimed row to the run's view of its connection. */
export function toClaimedConnection(row: ClaimedRow): ClaimedConnection {
  return {
    id: row.id,
    providerId: row.provider_id,
    providerKind: row.kind,
    providerName: row.name,
    accountId: row.account_id,
    externalCalendarId: row.external_calendar_id,
    refreshToken: row.refresh_token,
    syncCursor: row.sync_cursor,
    errorCount: row.error_count,
    leaseOwner: row.lease_owner,
    fullSyncRequested: row.full_sync_requested,
    requested: row.requested,
    reconcileDue: row.reconcile_due,
    hasLivePush: row.has_live_push,
    lastNotificationAt: row.last_notification_at,
    lastError: row.last_error,
    accountLabel: row.account_label ?? null,
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
      lease_expires_at = now() + make_interval(secs => ${leaseMs / 1000})
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
 * When a completed connection is next due, computed by the caller (jitter, push-missed) and
 * applied in SQL against the row's own state: a live push channel that has not missed lets it
 * wait the long interval, otherwise the short one; a due reconciliation comes first.
 */
export type CompletionSchedule = {
  shortPollMs: number;
  longPollMs: number;
  /** This run was a reconciliation that found the mirror complete (or repaired it). */
  verified: boolean;
  /** Next reconciliation from now: after a verification, or when none is scheduled yet. */
  reconcileInMs: number;
  /** This poll found changes that no notification announced. */
  pushMissed: boolean;
};

/** A schedule that keeps the old behaviour for callers that do not poll (tests, tools). */
export const NO_POLL: CompletionSchedule = {
  shortPollMs: 365 * 86_400_000,
  longPollMs: 365 * 86_400_000,
  verified: false,
  reconcileInMs: 365 * 86_400_000,
  pushMissed: false,
};

/**
 * Marks a sync complete (inside its last transaction, or alone when the run writes nothing else):
 * clears the backoff state, releases the lease, keeps `sync_needed` only if a request arrived
 * after the claim, and sets the due time of the next poll or reconciliation. Fenced by the lease,
 * so on its own it is also a correct last write.
 */
export async function completeSync(
  tx: Tx | Sql,
  connection: { id: string; leaseOwner: string },
  cursor: unknown,
  schedule: CompletionSchedule = NO_POLL,
): Promise<{ syncNeeded: boolean }> {
  const [done] = await completeSyncs(tx, [{ connection, cursor, schedule }]);
  if (done === null) throw new LeaseLostError(connection.id);
  return done;
}

/** One run's completion, for `completeSyncs`. */
export type Completion = {
  connection: { id: string; leaseOwner: string };
  cursor: unknown;
  schedule: CompletionSchedule;
};

/**
 * completeSync for many runs in one statement (src/storage/group_commit.ts batches the runs
 * that finish together). Each row is fenced by its own lease: the result per completion, in
 * order, is null where the lease was lost.
 */
export async function completeSyncs(
  tx: Tx | Sql,
  completions: readonly Completion[],
): Promise<({ syncNeeded: boolean } | null)[]> {
  const column = <T>(pick: (completion: Completion) => T) => completions.map(pick);
  const text = (values: unknown[]) => values.map(String);
  // Booleans and floats travel as text[]: postgres.js binds neither array type on its own.
  const reconcileAt = tx`case when s.verified or c.reconcile_due_at is null
    then now() + make_interval(secs => s.reconcile_s) else c.reconcile_due_at end`;
  const rows = await tx<{ id: string; sync_needed: boolean }[]>`
    with v as (
      select * from unnest(
        ${column((c) => c.connection.id)}::uuid[],
        ${column((c) => c.connection.leaseOwner)}::text[],
        ${column((c) => JSON.stringify(c.cursor ?? null))}::text[],
        ${text(column((c) => c.schedule.verified))}::text[],
        ${text(column((c) => c.schedule.pushMissed))}::text[],
        ${text(column((c) => c.schedule.reconcileInMs / 1000))}::text[],
        ${text(column((c) => c.schedule.longPollMs / 1000))}::text[],
        ${text(column((c) => c.schedule.shortPollMs / 1000))}::text[]
      ) as v(id, owner, cursor, verified, push_missed, reconcile_s, long_s, short_s)
    ), s as (
      select v.id, v.owner, v.cursor::jsonb as cursor, v.verified::boolean as verified,
        v.push_missed::boolean as push_missed, v.reconcile_s::float8 as reconcile_s,
        v.long_s::float8 as long_s, v.short_s::float8 as short_s
      from v
    ), locked as (
      -- The rows are locked in id order before any is updated, whatever join the plan picks
      -- (a hash join updates in heap order): Graph's batches lock connections in id order too,
      -- so the two cannot deadlock.
      select c.id from external_calendar_connections c
      where c.id in (select id from s)
      order by c.id
      for no key update of c
    )
    update external_calendar_connections c set
      sync_cursor = s.cursor,
      sync_needed = c.sync_requested_seq > c.sync_claimed_seq,
      full_sync_requested_seq = case when c.full_sync_requested_seq > c.sync_claimed_seq
        then c.full_sync_requested_seq end,
      due_at = case when c.sync_requested_seq > c.sync_claimed_seq then now()
        else least(${reconcileAt}, now() + make_interval(secs => case
          when not s.push_missed and ${livePushChannel(tx)}
            and (c.push_missed_at is null or c.last_notification_at > c.push_missed_at)
          then s.long_s else s.short_s end)) end,
      reconcile_due_at = ${reconcileAt},
      last_verified_at = case when s.verified then now() else c.last_verified_at end,
      push_missed_at = case when s.push_missed then now() else c.push_missed_at end,
      error_count = 0,
      backoff_until = null,
      last_synced_at = now(),
      last_success_at = now(),
      lease_owner = null,
      lease_expires_at = null,
      updated_at = now()
    from s join locked on locked.id = s.id
    where c.id = s.id and c.lease_owner = s.owner
    returning c.id, c.sync_needed`;
  const byId = new Map(rows.map((row) => [row.id, row.sync_needed]));
  return completions.map((c) => {
    const syncNeeded = byId.get(c.connection.id);
    return syncNeeded === undefined ? null : { syncNeeded };
  });
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

/** States in which a connection is never claimed until an operator acts. */
export type TerminalState = "reauth_required" | "calendar_unavailable" | "disabled";

/**
 * Stops syncing a connection until an operator acts (re-authorises, forces a sync). Its mirrored
 * rows are kept; the status marks them as no longer followed.
 */
export async function markTerminal(
  sql: Sql,
  connection: { id: string; leaseOwner: string },
  state: TerminalState,
  lastError: Record<string, unknown>,
): Promise<{ errorCount: number } | null> {
  const rows = await sql<{ error_count: number }[]>`
    update external_calendar_connections set
      status = ${state},
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

/** Stops syncing a connection until an operator re-authorises it. */
export async function markReauthRequired(
  sql: Sql,
  connection: { id: string; leaseOwner: string },
  lastError: Record<string, unknown>,
): Promise<{ errorCount: number } | null> {
  return await markTerminal(sql, connection, "reauth_required", lastError);
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

/** Replaces a v1 row's rotated refresh token, fenced by the run's lease (accounts: accounts.ts). */
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
    select id, refresh_token from external_calendar_connections
    where refresh_token is not null order by id`;
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
        refresh_token = ${refreshToken},
        -- Held deletions wait for release-deletions, whatever else the operator fixes.
        status = case when status = 'deletions_held' then status else 'active' end,
        error_count = case when status = 'deletions_held' then error_count else 0 end,
        sync_needed = true,
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

/** Connections per state, for the `calendar_sync_connections` gauge. */
export type ConnectionStateCounts = {
  due: number;
  backoff: number;
  idle: number;
  reauth_required: number;
  calendar_unavailable: number;
  deletions_held: number;
  disabled: number;
};

/** Counts connections by operational state for the gauge. */
export async function countConnectionsByState(sql: Sql): Promise<ConnectionStateCounts> {
  const [row] = await sql<ConnectionStateCounts[]>`
    select
      count(*) filter (where status = 'active' and sync_needed
        and (backoff_until is null or backoff_until <= now()))::int as due,
      count(*) filter (where status = 'active' and backoff_until > now())::int as backoff,
      count(*) filter (where status = 'active' and not sync_needed)::int as idle,
      count(*) filter (where status = 'reauth_required')::int as reauth_required,
      count(*) filter (where status = 'calendar_unavailable')::int as calendar_unavailable,
      count(*) filter (where status = 'deletions_held')::int as deletions_held,
      count(*) filter (where status = 'disabled')::int as disabled
    from external_calendar_connections`;
  return row;
}

/** How fresh one provider kind's active connections are, for the freshness gauges. */
export type FreshnessRow = {
  kind: ProviderKind;
  oldest_success_age_s: number;
  oldest_verification_age_s: number;
  stale: number;
};

/**
 * Per provider kind: the age of the oldest last success and last verification among active
 * connections (never: counted from creation), and how many have not succeeded for more than 3x
 * their poll interval (the long one with a live push channel, else the short one).
 */
export async function freshnessByProvider(
  sql: Sql,
  poll: { shortMs: number; longMs: number },
): Promise<FreshnessRow[]> {
  return await sql<FreshnessRow[]>`
    select p.kind,
      coalesce(extract(epoch from now() - min(coalesce(c.last_success_at, c.created_at))), 0)
        ::float8 as oldest_success_age_s,
      coalesce(extract(epoch from now() - min(coalesce(c.last_verified_at, c.created_at))), 0)
        ::float8 as oldest_verification_age_s,
      count(*) filter (where coalesce(c.last_success_at, c.created_at) < now() - 3 *
        make_interval(secs => case when ${livePushChannel(sql)} then ${poll.longMs / 1000}::float8
          else ${poll.shortMs / 1000}::float8 end))::int as stale
    from external_calendar_connections c join calendar_providers p on p.id = c.provider_id
    where c.status = 'active'
    group by p.kind`;
}

/**
 * Gives idle connections that no completion has scheduled yet (rows from before migration 006)
 * their first poll and reconciliation, spread at random over the intervals, a small batch per
 * call so no statement holds many row locks. Returns how many it scheduled.
 */
export async function scheduleUnscheduledConnections(
  sql: Sql,
  options: { pollMs: number; reconcileMs: number; batchSize?: number },
): Promise<number> {
  const result = await sql`
    update external_calendar_connections c set
      due_at = now() + random() * make_interval(secs => ${options.pollMs / 1000}),
      reconcile_due_at = now() + random() * make_interval(secs => ${options.reconcileMs / 1000}),
      updated_at = now()
    where c.id in (
      select id from external_calendar_connections
      where reconcile_due_at is null and not sync_needed
      limit ${options.batchSize ?? 1_000}
      for update skip locked
    )`;
  return result.count;
}

/** Puts a connection whose deletions were held back in `deletions_held` (in the sync's write). */
export async function markDeletionsHeld(tx: Tx, connectionId: string): Promise<void> {
  await tx`
    update external_calendar_connections set status = 'deletions_held', updated_at = now()
    where id = ${connectionId}`;
}

/**
 * Ends `deletions_held` after an operator's decision and requests a sync, in the caller's
 * transaction; false when the connection is not holding deletions.
 */
export async function leaveDeletionsHeld(tx: Tx, connectionId: string): Promise<boolean> {
  const rows = await tx`
    with left_held as (
      update external_calendar_connections c set
        status = 'active',
        ${syncRequestAssignments(tx)}
      where c.id = ${connectionId} and c.status = 'deletions_held'
      returning c.id
    )
    select id, pg_notify(${SYNC_CHANNEL}, id::text) from left_held`;
  return rows.length === 1;
}

/**
 * Claims connections that need channel work under the connection's own lease, the one a sync
 * takes. Holding it serialises this pass with syncs of the same connection, so only one of them
 * refreshes (and, for Microsoft, rotates) the refresh token at a time, and the rotated token is
 * stored through the usual fenced write. Work is due when a row's `next_work_at` has passed, or
 * when an active connection has no live (creating/active) channel at all, unless the provider's
 * circuit breaker is not closed (its calls would fail with the outage). `connectionId` claims
 * one connection whatever its channels and breaker (removal), if no one else holds its lease.
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
            and not exists (select 1 from provider_health h
              where h.provider = p.kind and h.state <> 'closed')
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
