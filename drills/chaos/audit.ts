/**
 * @module Evidence the database keeps for the soak: triggers (installed by the soak in its scratch
 * database, never by calsync) that record every lease hand-over, every sync request and every
 * dedupe key insert, each with its transaction id and the database clock.
 */
import type { Sql } from "../../src/storage/client.ts";

/** One change of a connection's lease owner. Times are ms since epoch on the database clock. */
export type LeaseChange = {
  connectionId: string;
  at: number;
  oldOwner: string | null;
  newOwner: string | null;
  /** The lease expiry the previous owner had when it was replaced. */
  oldExpiresAt: number | null;
};

/** One increment of a connection's sync request counter, in transaction `txid`. */
export type SyncRequest = { connectionId: string; txid: string; delta: number };

/** One dedupe key insert (the key's delivery was processed), in transaction `txid`. */
export type KeyInsert = { key: string; connectionId: string | null; txid: string; at: number };

/** Everything the triggers recorded. */
export type AuditTrail = {
  leases: LeaseChange[];
  requests: SyncRequest[];
  keys: KeyInsert[];
};

// SECURITY DEFINER: the daemon's role writes the rows it has no grant on. Statements run in
// the transaction that changed the row, so a rolled-back change leaves no audit row either.
const INSTALL = `
create table chaos_lease_audit (
  id bigserial primary key,
  connection_id uuid not null,
  old_owner text,
  new_owner text,
  old_expires_at timestamptz,
  seq_delta bigint not null,
  txid bigint not null default txid_current(),
  at timestamptz not null default clock_timestamp()
);
create table chaos_key_audit (
  id bigserial primary key,
  key text not null,
  connection_id uuid,
  txid bigint not null default txid_current(),
  at timestamptz not null default clock_timestamp()
);
create function chaos_audit_connection() returns trigger language plpgsql security definer
set search_path = public as $$
begin
  insert into chaos_lease_audit (connection_id, old_owner, new_owner, old_expires_at, seq_delta)
  values (new.id, old.lease_owner, new.lease_owner, old.lease_expires_at,
    new.sync_requested_seq - old.sync_requested_seq);
  return null;
end $$;
create function chaos_audit_key() returns trigger language plpgsql security definer
set search_path = public as $$
begin
  insert into chaos_key_audit (key, connection_id) values (new.key, new.connection_id);
  return null;
end $$;
create trigger chaos_audit_connection after update on external_calendar_connections
for each row when (old.lease_owner is distinct from new.lease_owner
  or old.sync_requested_seq <> new.sync_requested_seq)
execute function chaos_audit_connection();
create trigger chaos_audit_key after insert on webhook_dedupe_keys
for each row execute function chaos_audit_key();
`;

/** Installs the audit triggers; the schema must be migrated already. */
export async function installAudit(adminSql: Sql): Promise<void> {
  await adminSql.unsafe(INSTALL);
}

/** Reads everything the triggers recorded. */
export async function readAudit(adminSql: Sql): Promise<AuditTrail> {
  const rows = await adminSql<
    {
      connection_id: string;
      old_owner: string | null;
      new_owner: string | null;
      old_expires_at: Date | null;
      seq_delta: string;
      txid: string;
      at: Date;
    }[]
  >`select connection_id, old_owner, new_owner, old_expires_at, seq_delta::text, txid::text, at
    from chaos_lease_audit order by id`;
  const keys = await adminSql<
    { key: string; connection_id: string | null; txid: string; at: Date }[]
  >`select key, connection_id, txid::text, at from chaos_key_audit order by id`;
  return {
    leases: rows.filter((r) => r.old_owner !== r.new_owner).map((r) => ({
      connectionId: r.connection_id,
      at: r.at.getTime(),
      oldOwner: r.old_owner,
      newOwner: r.new_owner,
      oldExpiresAt: r.old_expires_at?.getTime() ?? null,
    })),
    requests: rows.filter((r) => Number(r.seq_delta) !== 0).map((r) => ({
      connectionId: r.connection_id,
      txid: r.txid,
      delta: Number(r.seq_delta),
    })),
    keys: keys.map((k) => ({
      key: k.key,
      connectionId: k.connection_id,
      txid: k.txid,
      at: k.at.getTime(),
    })),
  };
}

/**
 * The database clock minus this process's clock (ms), from the fastest of a few round trips,
 * and the uncertainty (half that round trip): log times and audit times meet through it.
 */
export async function measureClockOffset(
  adminSql: Sql,
): Promise<{ offsetMs: number; uncertaintyMs: number }> {
  let best = { offsetMs: 0, uncertaintyMs: Infinity };
  for (let i = 0; i < 5; i++) {
    const before = Date.now();
    const [row] = await adminSql<{ now: Date }[]>`select clock_timestamp() as now`;
    const after = Date.now();
    const uncertaintyMs = (after - before) / 2 + 1;
    if (uncertaintyMs < best.uncertaintyMs) {
      best = { offsetMs: row.now.getTime() - (before + after) / 2, uncertaintyMs };
    }
  }
  return best;
}
