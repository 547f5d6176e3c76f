/**
 * @module Read-only SQL for the operator console: the overview's counts per provider and state,
 * a keyset-paged, filtered list of connections, and whether optional tables exist. Writes stay
 * in the modules that own each table (connections.ts, the sync's release).
 */
import type { Sql } from "./client.ts";

/** What the console calls a connection's state: its status, with `active` split by backoff. */
export const CONSOLE_STATES = [
  "active",
  "backing_off",
  "reauth_required",
  "calendar_unavailable",
  "deletions_held",
  "disabled",
] as const;

/** One of CONSOLE_STATES. */
export type ConsoleState = (typeof CONSOLE_STATES)[number];

/** The state expression (table aliased `c`), written once for the counts and the filter. */
function stateOf(sql: Sql) {
  return sql`case when c.status <> 'active' then c.status
    when c.backoff_until > now() then 'backing_off' else 'active' end`;
}

/** One provider's line of the overview. */
export type ProviderOverviewRow = {
  provider_id: string;
  provider_name: string;
  kind: string;
  allowlisted: boolean;
  total: number;
  counts: Record<ConsoleState, number>;
  /** Oldest last success among active connections (never: its creation). */
  oldest_success_at: Date | null;
  /** Oldest last verification (reconciliation) among active connections. */
  oldest_verified_at: Date | null;
};

/** Connections per provider and console state, with the oldest success and verification. */
export async function providerOverview(sql: Sql): Promise<ProviderOverviewRow[]> {
  type Row = Omit<ProviderOverviewRow, "counts"> & Record<ConsoleState, number>;
  const counts = CONSOLE_STATES.map((state) =>
    sql`count(c.id) filter (where ${stateOf(sql)} = ${state})::int as ${sql(state)},`
  );
  const rows = await sql<Row[]>`
    select p.id as provider_id, p.name as provider_name, p.kind, p.allowlisted,
      ${counts}
      count(c.id)::int as total,
      min(coalesce(c.last_success_at, c.created_at)) filter (where c.status = 'active')
        as oldest_success_at,
      min(coalesce(c.last_verified_at, c.created_at)) filter (where c.status = 'active')
        as oldest_verified_at
    from calendar_providers p
    left join external_calendar_connections c on c.provider_id = p.id
    group by p.id order by p.name`;
  return rows.map((row) => ({
    provider_id: row.provider_id,
    provider_name: row.provider_name,
    kind: row.kind,
    allowlisted: row.allowlisted,
    total: row.total,
    oldest_success_at: row.oldest_success_at,
    oldest_verified_at: row.oldest_verified_at,
    counts: Object.fromEntries(CONSOLE_STATES.map((s) => [s, row[s]])) as Record<
      ConsoleState,
      number
    >,
  }));
}

/** The active connections that have gone longest without a success, and without a verification. */
export async function stalestConnections(
  sql: Sql,
): Promise<{ success: string | null; verification: string | null }> {
  const [row] = await sql<{ success: string | null; verification: string | null }[]>`
    select
      (select id from external_calendar_connections where status = 'active'
        order by coalesce(last_success_at, created_at), id limit 1) as success,
      (select id from external_calendar_connections where status = 'active'
        order by coalesce(last_verified_at, created_at), id limit 1) as verification`;
  return row;
}

/** A connection as the console's list shows it: the drill's columns, its state, its ages. */
export type ConnectionListRow = {
  id: string;
  provider_name: string;
  provider_kind: string;
  external_calendar_id: string;
  account_label: string | null;
  state: ConsoleState;
  error_count: number;
  last_error: unknown;
  backoff_until: Date | null;
  sync_needed: boolean;
  last_success_at: Date | null;
  last_notification_at: Date | null;
  last_verified_at: Date | null;
  held_deletions: number;
};

/** Filters and the keyset position of one page of the list. */
export type ConnectionListQuery = {
  /** A connection id (exact), or text found in the calendar id, account label or provider name. */
  search?: string;
  provider?: string;
  state?: ConsoleState;
  /** The page after this id (ascending), or the page before `before` (descending). */
  after?: string;
  before?: string;
  limit: number;
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** True when `text` is a UUID (a connection id). */
export function isUuid(text: string): boolean {
  return UUID.test(text);
}

/**
 * One page of connections in id order, plus whether more follow in that direction. Keyset paging
 * on the primary key: a page costs an index range scan however deep it is, so 10,000 or 1M
 * connections page the same; filters are applied to that scan.
 */
export async function listConnectionPage(
  sql: Sql,
  query: ConnectionListQuery,
): Promise<{ rows: ConnectionListRow[]; more: boolean }> {
  const search = query.search?.trim() || null;
  const idSearch = search !== null && isUuid(search) ? search : null;
  const like = search === null ? null : `%${search.replace(/[\\%_]/g, (m) => `\\${m}`)}%`;
  const backwards = query.before !== undefined && isUuid(query.before);
  const after = !backwards && query.after && isUuid(query.after) ? query.after : null;
  const before = backwards ? query.before! : null;
  const rows = await sql<ConnectionListRow[]>`
    select c.id, p.name as provider_name, p.kind as provider_kind, c.external_calendar_id,
      c.account_label, ${stateOf(sql)} as state, c.error_count, c.last_error, c.backoff_until,
      c.sync_needed, c.last_success_at, c.last_notification_at, c.last_verified_at,
      (select count(*) from held_event_deletions h where h.connection_id = c.id)::int
        as held_deletions
    from external_calendar_connections c join calendar_providers p on p.id = c.provider_id
    where (${after}::uuid is null or c.id > ${after}::uuid)
      and (${before}::uuid is null or c.id < ${before}::uuid)
      and (${query.provider ?? null}::text is null or p.name = ${query.provider ?? null})
      and (${query.state ?? null}::text is null or ${stateOf(sql)} = ${query.state ?? null})
      and (${search}::text is null or c.id = ${idSearch}::uuid
        or c.external_calendar_id ilike ${like} or c.account_label ilike ${like}
        or p.name ilike ${like})
    order by c.id ${backwards ? sql`desc` : sql`asc`}
    limit ${query.limit + 1}`;
  const more = rows.length > query.limit;
  const page = rows.slice(0, query.limit);
  return { rows: backwards ? page.reverse() : page, more };
}

/** Whether a table exists (optional tables of features that may not be deployed yet). */
export async function tableExists(sql: Sql, table: string): Promise<boolean> {
  const [row] = await sql<{ found: boolean }[]>`
    select to_regclass(${table}) is not null as found`;
  return row.found;
}

/**
 * Up to `limit` rows of an optional table as plain records, for sections whose owner has not
 * given the console a query of its own yet. The caller hides secret-named columns.
 */
export async function sampleRows(
  sql: Sql,
  table: "provider_health" | "change_subscribers",
  limit: number,
): Promise<Record<string, unknown>[]> {
  return await sql<Record<string, unknown>[]>`
    select * from ${sql(table)} limit ${limit}`;
}
