/**
 * @module The drill's audit trail: triggers (installed by the drill in its scratch database, never
 * by calsync) that keep every state a connection row went through and every event write, with the
 * transaction's time, so a check judges the row as it was when the failure was recorded, however
 * late it reads and however often the daemon has retried since.
 */
import type { Sql } from "../../src/storage/client.ts";
import type { ConnectionState } from "./evidence.ts";
import { type ConnectionRow, toState } from "./snapshot.ts";

/** One update of a connection row: the state it left, and when (database clock, ms). */
export type AuditEntry = {
  id: number;
  /** The updating transaction's start (`now()`), the clock `backoff_until` is computed on. */
  txAt: number;
  state: ConnectionState;
  /** The lease owner before the update (a claim turns null into an owner, a release back). */
  oldLeaseOwner: string | null;
  /** Sync requests the update added (`sync_requested_seq` increments): triggers of a sync. */
  requests: number;
};

// SECURITY DEFINER: the daemon's role writes audit rows it has no grant on. A rolled-back
// change leaves no audit row: the trail holds what was committed, in commit order of ids.
const INSTALL = `
create table drill_connection_audit (
  id bigserial primary key,
  connection_id uuid not null,
  error_count int not null,
  last_error jsonb,
  backoff_until timestamptz,
  sync_needed boolean not null,
  last_success_at timestamptz,
  sync_cursor jsonb,
  status text not null,
  old_lease_owner text,
  lease_owner text,
  requests bigint not null,
  tx_at timestamptz not null default now()
);
create table drill_event_audit (
  id bigserial primary key,
  connection_id uuid not null,
  op text not null,
  at timestamptz not null default clock_timestamp()
);
create function drill_audit_connection() returns trigger language plpgsql security definer
set search_path = public as $$
begin
  insert into drill_connection_audit (connection_id, error_count, last_error, backoff_until,
    sync_needed, last_success_at, sync_cursor, status, old_lease_owner, lease_owner, requests)
  values (new.id, new.error_count, new.last_error, new.backoff_until, new.sync_needed,
    new.last_success_at, new.sync_cursor, new.status, old.lease_owner, new.lease_owner,
    new.sync_requested_seq - old.sync_requested_seq);
  return null;
end $$;
create function drill_audit_event() returns trigger language plpgsql security definer
set search_path = public as $$
begin
  insert into drill_event_audit (connection_id, op)
  values (coalesce(new.connection_id, old.connection_id), tg_op);
  return null;
end $$;
create trigger drill_audit_connection after update on external_calendar_connections
for each row execute function drill_audit_connection();
create trigger drill_audit_event after insert or update or delete on external_calendar_events
for each row execute function drill_audit_event();
`;

/** Installs the audit triggers; the schema must be migrated already. */
export async function installAudit(adminSql: Sql): Promise<void> {
  await adminSql.unsafe(INSTALL);
}

/** The id of the newest audit entry (0 when none): entries after it are "since now". */
export async function auditMark(adminSql: Sql): Promise<number> {
  const [row] = await adminSql<{ id: number }[]>`
    select coalesce(max(id), 0)::int as id from drill_connection_audit`;
  return row.id;
}

type AuditRow = ConnectionRow & {
  id: number;
  old_lease_owner: string | null;
  requests: number;
  tx_at: Date;
};

/** Every update of one connection row after audit entry `since`, oldest first. */
export async function connectionHistory(
  adminSql: Sql,
  connectionId: string,
  since: number,
): Promise<AuditEntry[]> {
  const rows = await adminSql<AuditRow[]>`
    select id::int, error_count, last_error, backoff_until, sync_needed, last_success_at,
      sync_cursor, status, old_lease_owner, lease_owner, requests::int, tx_at
    from drill_connection_audit where connection_id = ${connectionId} and id > ${since}
    order by id`;
  return rows.map((row) => ({
    id: row.id,
    txAt: row.tx_at.getTime(),
    oldLeaseOwner: row.old_lease_owner,
    requests: row.requests,
    state: toState(row),
  }));
}

/** Event rows of a connection inserted, updated or deleted between two database times (ms). */
export async function eventWrites(
  adminSql: Sql,
  connectionId: string,
  window: { from: number; to: number },
): Promise<number> {
  const [row] = await adminSql<{ n: number }[]>`
    select count(*)::int as n from drill_event_audit
    where connection_id = ${connectionId}
      and at >= ${new Date(window.from)} and at < ${new Date(window.to)}`;
  return row.n;
}
