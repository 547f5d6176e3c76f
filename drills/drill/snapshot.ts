/**
 * @module What the drill reads from the database: the operators' verification query (from the drill
 * document), byte-exact event snapshots, connection state, dedupe keys and channels.
 */
import type { Sql } from "../../src/storage/client.ts";
import type { ConnectionState, EventSnapshot } from "./evidence.ts";

/** The drill document's verification query, with `<provider-id>` left for the report to fill. */
export const VERIFICATION_QUERY =
  "SELECT id, provider_id, error_count, last_error, backoff_until, " +
  "sync_needed FROM external_calendar_connections WHERE provider_id = '<provider-id>';";

/** One row of the verification query, as JSON-friendly values. */
export type VerificationRow = {
  id: string;
  provider_id: string;
  error_count: number;
  last_error: unknown;
  backoff_until: string | null;
  sync_needed: boolean;
};

/** Runs the verification query for one provider. */
export async function verificationRows(sql: Sql, providerId: string): Promise<VerificationRow[]> {
  const rows = await sql<
    {
      id: string;
      provider_id: string;
      error_count: number;
      last_error: unknown;
      backoff_until: Date | null;
      sync_needed: boolean;
    }[]
  >`
    SELECT id, provider_id, error_count, last_error, backoff_until, sync_needed
    FROM external_calendar_connections
    WHERE provider_id = ${providerId}`;
  return rows.map((row) => ({ ...row, backoff_until: row.backoff_until?.toISOString() ?? null }));
}

/** The columns of a connection row behind ConnectionState, as postgres.js returns them. */
export type ConnectionRow = {
  error_count: number;
  last_error: unknown;
  backoff_until: Date | null;
  sync_needed: boolean;
  last_success_at: Date | null;
  sync_cursor: unknown;
  status: string;
  lease_owner: string | null;
};

/** The drill's view of a connection row (also of the audit trail's copies of it). */
export function toState(row: ConnectionRow): ConnectionState {
  return {
    errorCount: row.error_count,
    lastError: row.last_error,
    backoffUntil: row.backoff_until,
    syncNeeded: row.sync_needed,
    lastSuccessAt: row.last_success_at,
    syncCursor: row.sync_cursor,
    status: row.status,
    leaseOwner: row.lease_owner,
  };
}

/** Reads a connection's state; null when the row is gone. */
export async function readConnection(sql: Sql, id: string): Promise<ConnectionState | null> {
  const [row] = await sql<ConnectionRow[]>`
    select error_count, last_error, backoff_until, sync_needed, last_success_at, sync_cursor,
      status, lease_owner
    from external_calendar_connections where id = ${id}`;
  return row ? toState(row) : null;
}

/** The database clock, in ms since epoch (backoff times are written with it). */
export async function databaseNow(sql: Sql): Promise<number> {
  const [row] = await sql<{ now: Date }[]>`select clock_timestamp() as now`;
  return row.now.getTime();
}

/** Every stored column of the connection's events, as the server renders them to text. */
export async function snapshotEvents(sql: Sql, connectionId: string): Promise<EventSnapshot> {
  const rows = await sql<{ line: string }[]>`
    select concat_ws(' | ', external_event_id, coalesce(etag, '<null>'), status,
      coalesce(title, '<null>'), coalesce(starts_at::text, '<null>'),
      coalesce(ends_at::text, '<null>'), all_day::text,
      coalesce(provider_updated_at::text, '<null>'), raw::text, sync_generation::text,
      synced_at::text) as line
    from external_calendar_events where connection_id = ${connectionId}
    order by external_event_id`;
  return rows.map((row) => row.line);
}

/** `id|title|etag` of the mirrored events, sorted, to compare with the provider's. */
export async function mirrorTuples(sql: Sql, connectionId: string): Promise<string[]> {
  const rows = await sql<{ line: string }[]>`
    select external_event_id || '|' || coalesce(title, '') || '|' || coalesce(etag, '') as line
    from external_calendar_events where connection_id = ${connectionId}`;
  return rows.map((row) => row.line).sort();
}

/** A connection's row, events and marker rows, all read by one statement (one snapshot). */
export type StateSample = {
  row: ConnectionState;
  events: EventSnapshot;
  markerRows: number;
};

/** Reads a consistent sample of a connection's state and events. */
export async function sampleState(
  sql: Sql,
  connectionId: string,
  marker: string,
): Promise<StateSample | null> {
  const [found] = await sql<(ConnectionRow & { events: string[]; marker_rows: number })[]>`
    select c.error_count, c.last_error, c.backoff_until, c.sync_needed, c.last_success_at,
      c.sync_cursor, c.status, c.lease_owner,
      coalesce(array_agg(concat_ws(' | ', e.external_event_id, coalesce(e.etag, '<null>'),
        e.status, coalesce(e.title, '<null>'), coalesce(e.starts_at::text, '<null>'),
        coalesce(e.ends_at::text, '<null>'), e.all_day::text,
        coalesce(e.provider_updated_at::text, '<null>'), e.raw::text, e.sync_generation::text,
        e.synced_at::text) order by e.external_event_id)
        filter (where e.external_event_id is not null), '{}') as events,
      count(e.external_event_id) filter (where strpos(coalesce(e.title, ''), ${marker}) > 0)::int
        as marker_rows
    from external_calendar_connections c
    left join external_calendar_events e on e.connection_id = c.id
    where c.id = ${connectionId}
    group by c.id`;
  if (!found) return null;
  return {
    row: toState(found),
    events: found.events,
    markerRows: found.marker_rows,
  };
}

/** The dedupe keys recorded for a connection, oldest first. */
export async function dedupeKeys(sql: Sql, connectionId: string): Promise<string[]> {
  const rows = await sql<{ key: string }[]>`
    select key from webhook_dedupe_keys where connection_id = ${connectionId}
    order by received_at, key`;
  return rows.map((row) => row.key);
}

/** True when the connection has an active push channel. */
export async function hasActiveChannel(sql: Sql, connectionId: string): Promise<boolean> {
  const [row] = await sql<{ n: number }[]>`
    select count(*)::int as n from webhook_channels
    where connection_id = ${connectionId} and status = 'active'`;
  return row.n > 0;
}
