/** @module SQL for `calendar_accounts`: one refresh token per connected account, shared by its calendars. */
import type { Sql, Tx } from "./client.ts";
import type { ProviderKind } from "../core/provider_kind.ts";
import { SYNC_CHANNEL } from "./connections.ts";

/** Account states: `reauth_required` after `invalid_grant`, `revoked` by an operator. */
export type AccountStatus = "active" | "reauth_required" | "revoked";

/** An account as operators and the admin API see it (never its refresh token). */
export type AccountRow = {
  id: string;
  provider_id: string;
  provider_name: string;
  provider_kind: ProviderKind;
  subject: string | null;
  email: string | null;
  label: string | null;
  scopes: string[];
  status: AccountStatus;
  last_error: unknown;
  last_refreshed_at: Date | null;
  created_at: Date;
  updated_at: Date;
  connections: number;
};

function accountColumns(sql: Sql | Tx) {
  return sql`a.id, a.provider_id, p.name as provider_name, p.kind as provider_kind, a.subject,
    a.email, a.label, a.scopes, a.status, a.last_error, a.last_refreshed_at, a.created_at,
    a.updated_at,
    (select count(*) from external_calendar_connections c where c.account_id = a.id)::int
      as connections`;
}

/** What a new account is made of; `refreshToken` is already sealed. */
export type NewAccount = {
  providerId: string;
  subject: string | null;
  email: string | null;
  label?: string | null;
  refreshToken: string;
  scopes?: string[];
};

/** Inserts an account whose subject is unknown (a manually supplied refresh token). */
export async function insertAccount(sql: Sql | Tx, input: NewAccount): Promise<{ id: string }> {
  const [row] = await sql<{ id: string }[]>`
    insert into calendar_accounts (provider_id, subject, email, label, refresh_token, scopes)
    values (${input.providerId}, ${input.subject}, ${input.email}, ${input.label ?? null},
      ${input.refreshToken}, ${input.scopes ?? []})
    returning id`;
  return row;
}

/**
 * Creates the account of a consent, or updates the one with the same subject: a re-consent
 * stores the new refresh token (a consent without one keeps the held token), makes the account
 * active again, and makes its `reauth_required` connections active with a sync requested.
 */
export async function upsertConsentedAccount(
  tx: Tx,
  input: Omit<NewAccount, "subject" | "refreshToken"> & {
    subject: string;
    refreshToken: string | null;
  },
): Promise<{ id: string; created: boolean } | null> {
  const [row] = await tx<{ id: string; created: boolean }[]>`
    insert into calendar_accounts (provider_id, subject, email, refresh_token, scopes)
    -- Without a new token the row only exists to hit the conflict; its empty token is never kept.
    select ${input.providerId}, ${input.subject}, ${input.email},
      coalesce(${input.refreshToken}::text, ''), ${input.scopes ?? []}
    where ${input.refreshToken}::text is not null
      or exists (select 1 from calendar_accounts where provider_id = ${input.providerId}
        and subject = ${input.subject})
    on conflict (provider_id, subject) where subject is not null do update set
      email = coalesce(excluded.email, calendar_accounts.email),
      refresh_token = coalesce(${input.refreshToken}, calendar_accounts.refresh_token),
      scopes = excluded.scopes, status = 'active', last_error = null, updated_at = now()
    returning id, (xmax = 0) as created`;
  if (!row) return null;
  if (!row.created) await reactivateConnections(tx, row.id);
  return row;
}

/**
 * Gives an account without a subject (moved from v1) the identity of its re-consent: false when
 * another account already has that subject (the caller then updates that one instead).
 */
export async function adoptConsent(
  tx: Tx,
  accountId: string,
  input: { subject: string; email: string | null; refreshToken: string | null; scopes?: string[] },
): Promise<boolean> {
  const rows = await tx`
    update calendar_accounts a set subject = ${input.subject},
      email = coalesce(${input.email}, a.email),
      refresh_token = coalesce(${input.refreshToken}::text, a.refresh_token),
      scopes = ${input.scopes ?? []}, status = 'active', last_error = null, updated_at = now()
    where a.id = ${accountId} and a.subject is null
      and not exists (select 1 from calendar_accounts o
        where o.provider_id = a.provider_id and o.subject = ${input.subject})
    returning a.id`;
  if (rows.length === 0) return false;
  await reactivateConnections(tx, accountId);
  return true;
}

/**
 * Locks an account's connections in one status, in id order: every statement that locks several
 * connections does so in id order (completions, webhook batches), so none can deadlock another.
 */
function lockedInIdOrder(sql: Sql | Tx, accountId: string, status: string) {
  return sql`
    select id from external_calendar_connections
    where account_id = ${accountId} and status = ${status}
    order by id
    for no key update`;
}

/** Makes an account's `reauth_required` connections active and requests a sync of each. */
async function reactivateConnections(sql: Sql | Tx, accountId: string): Promise<number> {
  const rows = await sql`
    with locked as (
      ${lockedInIdOrder(sql, accountId, "reauth_required")}
    ), updated as (
      update external_calendar_connections c set status = 'active', error_count = 0,
        sync_needed = true, sync_requested_seq = c.sync_requested_seq + 1, backoff_until = null,
        due_at = now(), lease_owner = null, lease_expires_at = null, updated_at = now()
      from locked where c.id = locked.id
      returning c.id
    )
    select id, pg_notify(${SYNC_CHANNEL}, id::text) from updated`;
  return rows.length;
}

/** One account with its provider, or null. */
export async function findAccount(sql: Sql | Tx, id: string): Promise<AccountRow | null> {
  const [row] = await sql<AccountRow[]>`
    select ${accountColumns(sql)}
    from calendar_accounts a join calendar_providers p on p.id = a.provider_id
    where a.id = ${id}`;
  return row ?? null;
}

/** The account's sealed refresh token and provider, for discovery and channel calls. */
export async function accountCredentials(
  sql: Sql,
  id: string,
): Promise<{ id: string; providerKind: ProviderKind; refreshToken: string } | null> {
  const [row] = await sql<{ id: string; kind: ProviderKind; refresh_token: string }[]>`
    select a.id, p.kind, a.refresh_token
    from calendar_accounts a join calendar_providers p on p.id = a.provider_id
    where a.id = ${id}`;
  return row ? { id: row.id, providerKind: row.kind, refreshToken: row.refresh_token } : null;
}

/** Accounts by id (unique and stable, so cursors never repeat a row), after the id `after`. */
export async function listAccounts(
  sql: Sql,
  page: { limit: number; after?: string } = { limit: 10_000 },
): Promise<AccountRow[]> {
  const after = page.after ?? null;
  return await sql<AccountRow[]>`
    select ${accountColumns(sql)}
    from calendar_accounts a join calendar_providers p on p.id = a.provider_id
    where ${after}::uuid is null or a.id > ${after}::uuid
    order by a.id
    limit ${page.limit}`;
}

/**
 * Stores a rotated refresh token once on the account, fenced by the lease of the connection
 * whose run refreshed it (a run that lost its lease stores nothing).
 */
export async function storeAccountRefreshToken(
  sql: Sql,
  fence: { accountId: string; connectionId: string; leaseOwner: string },
  refreshToken: string,
): Promise<boolean> {
  const rows = await sql`
    update calendar_accounts a set refresh_token = ${refreshToken}, last_refreshed_at = now(),
      updated_at = now()
    where a.id = ${fence.accountId} and exists (
      select 1 from external_calendar_connections c
      where c.id = ${fence.connectionId} and c.lease_owner = ${fence.leaseOwner})
    returning a.id`;
  return rows.length === 1;
}

/**
 * `invalid_grant` and its kin: the account and every active connection of it stop syncing until
 * re-authorised (one refresh token serves them all, so all of them would fail the same way).
 */
export async function markAccountReauthRequired(
  sql: Sql,
  accountId: string,
  lastError: Record<string, unknown>,
): Promise<{ connections: number }> {
  const result = await sql.begin(async (tx) => {
    await tx`
      update calendar_accounts set status = 'reauth_required',
        last_error = ${tx.json(lastError as never)}, updated_at = now()
      where id = ${accountId}`;
    return await tx`
      with locked as (${lockedInIdOrder(tx, accountId, "active")})
      update external_calendar_connections c set status = 'reauth_required',
        last_error = ${tx.json(lastError as never)}, backoff_until = null, sync_needed = true,
        updated_at = now()
      from locked where c.id = locked.id
      returning c.id`;
  });
  return { connections: result.length };
}

/** Re-authorises an account with a new refresh token; its reauth_required connections sync again. */
export async function reauthorizeAccount(
  sql: Sql,
  accountId: string,
  refreshToken: string,
): Promise<number | null> {
  return await sql.begin(async (tx) => {
    const rows = await tx`
      update calendar_accounts set refresh_token = ${refreshToken}, status = 'active',
        last_error = null, updated_at = now()
      where id = ${accountId} returning id`;
    if (rows.length === 0) return null;
    return await reactivateConnections(tx, accountId);
  });
}

/** The ids of an account's connections (to stop their channels before deleting them). */
export async function accountConnectionIds(sql: Sql, accountId: string): Promise<string[]> {
  const rows = await sql<{ id: string }[]>`
    select id from external_calendar_connections where account_id = ${accountId} order by id`;
  return rows.map((row) => row.id);
}

/** Deletes an account with its connections (their events, keys and channels cascade). */
export async function deleteAccount(sql: Sql, accountId: string): Promise<boolean> {
  return await sql.begin(async (tx) => {
    await tx`delete from external_calendar_connections where account_id = ${accountId}`;
    const rows = await tx`delete from calendar_accounts where id = ${accountId} returning id`;
    return rows.length === 1;
  });
}

/** Every account's stored (possibly sealed) refresh token, for key rotation. */
export async function listAccountTokens(
  sql: Sql,
): Promise<{ id: string; refresh_token: string }[]> {
  return await sql<{ id: string; refresh_token: string }[]>`
    select id, refresh_token from calendar_accounts order by id`;
}

/** Swaps an account's stored token only if it is still `expected` (a concurrent rotation wins). */
export async function replaceAccountToken(
  sql: Sql,
  accountId: string,
  expected: string,
  replacement: string,
): Promise<boolean> {
  const rows = await sql`
    update calendar_accounts set refresh_token = ${replacement}, updated_at = now()
    where id = ${accountId} and refresh_token = ${expected}
    returning id`;
  return rows.length === 1;
}

/** Sets the subject (and email) of an account that has none, unless another account has it. */
export async function setAccountIdentity(
  sql: Sql,
  accountId: string,
  identity: { subject: string; email: string | null },
): Promise<boolean> {
  const rows = await sql`
    update calendar_accounts a set subject = ${identity.subject},
      email = coalesce(a.email, ${identity.email}), updated_at = now()
    where a.id = ${accountId} and a.subject is null
      and not exists (select 1 from calendar_accounts o
        where o.provider_id = a.provider_id and o.subject = ${identity.subject})
    returning a.id`;
  return rows.length === 1;
}
