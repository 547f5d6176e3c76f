/** @module SQL for `oauth_connect_states`: the PKCE verifier and single use of each `state`. */
import type { Sql, Tx } from "./client.ts";

/** Which calendars a completed consent connects. */
export type ConnectCalendars = "all" | "primary" | "none";

/** The channel `calsync accounts connect` waits on; the payload is the state's hash. */
export const CONNECT_CHANNEL = "calsync_connect_completed";

/** A state as the callback reads it after claiming it. */
export type ConnectStateRow = {
  state_hash: string;
  provider_id: string;
  code_verifier: string;
  redirect_uri: string;
  calendars: ConnectCalendars;
  /** The account this flow re-consents (null: whoever consents); the result once connected. */
  account_id: string | null;
};

/** Records a new flow's state (hashed) and sealed verifier; it expires after `ttlMs`. */
export async function insertConnectState(
  sql: Sql,
  input: {
    stateHash: string;
    providerId: string;
    codeVerifier: string;
    redirectUri: string;
    calendars: ConnectCalendars;
    ttlMs: number;
    accountId?: string | null;
  },
): Promise<{ expiresAt: Date }> {
  // Abandoned flows go as new ones start: the table stays as small as the flows in progress.
  await sql`delete from oauth_connect_states where expires_at < now() - interval '1 day'`;
  const [row] = await sql<{ expires_at: Date }[]>`
    insert into oauth_connect_states
      (state_hash, provider_id, code_verifier, redirect_uri, calendars, account_id, expires_at)
    values (${input.stateHash}, ${input.providerId}, ${input.codeVerifier}, ${input.redirectUri},
      ${input.calendars}, ${input.accountId ?? null},
      now() + make_interval(secs => ${input.ttlMs / 1000}))
    returning expires_at`;
  return { expiresAt: row.expires_at };
}

/** What claiming a state found: usable once, or why not. */
export type StateClaim =
  | { kind: "claimed"; state: ConnectStateRow }
  | { kind: "unknown" | "used" | "expired" };

/**
 * Marks a state used, once: a second callback with it (a replay) finds it used. The check and
 * the mark are one statement, so two racing callbacks cannot both pass.
 */
export async function claimConnectState(
  sql: Sql,
  stateHash: string,
  providerId: string,
): Promise<StateClaim> {
  const [row] = await sql<(ConnectStateRow & { claimed: boolean; used: boolean })[]>`
    with claimed as (
      update oauth_connect_states set used_at = now()
      where state_hash = ${stateHash} and provider_id = ${providerId} and used_at is null
        and expires_at > now()
      returning state_hash
    )
    select s.state_hash, s.provider_id, s.code_verifier, s.redirect_uri, s.calendars, s.account_id,
      exists (select 1 from claimed) as claimed, s.used_at is not null as used
    from oauth_connect_states s
    where s.state_hash = ${stateHash} and s.provider_id = ${providerId}`;
  if (!row) return { kind: "unknown" };
  if (row.claimed) {
    const { claimed: _claimed, used: _used, ...state } = row;
    return { kind: "claimed", state };
  }
  return { kind: row.used ? "used" : "expired" };
}

/** Records how a claimed flow ended (for the waiting CLI) and wakes it. */
export async function recordConnectOutcome(
  sql: Sql | Tx,
  stateHash: string,
  outcome: { accountId: string } | { error: string },
): Promise<void> {
  const accountId = "accountId" in outcome ? outcome.accountId : null;
  const error = "error" in outcome ? outcome.error : null;
  await sql`
    with recorded as (
      update oauth_connect_states set
        outcome = ${accountId === null ? "failed" : "connected"},
        account_id = ${accountId}, error = ${error}
      where state_hash = ${stateHash}
      returning state_hash
    )
    select pg_notify(${CONNECT_CHANNEL}, state_hash) from recorded`;
}

/** How a flow ended so far: null while the user has not come back. */
export async function readConnectOutcome(
  sql: Sql,
  stateHash: string,
): Promise<
  { outcome: "connected" | "failed"; account_id: string | null; error: string | null } | null
> {
  const [row] = await sql<
    { outcome: "connected" | "failed" | null; account_id: string | null; error: string | null }[]
  >`select outcome, account_id, error from oauth_connect_states where state_hash = ${stateHash}`;
  if (!row || row.outcome === null) return null;
  return { outcome: row.outcome, account_id: row.account_id, error: row.error };
}
