/**
 * @module SQL for `change_feed` (the outbox the triggers of migration 008 stage and number at
 * commit) and `change_feed_state`: reads by sequence, the head, retention.
 */
import type { Sql, Tx } from "./client.ts";

/** The channel the commit-time numbering NOTIFYs with the new head. */
export const CHANGES_CHANNEL = "calsync_changes";

/** One committed change, as readers see it. */
export type ChangeRow = {
  seq: number;
  committed_at: Date;
  connection_id: string | null;
  account_id: string | null;
  type: string;
  external_event_id: string | null;
  data: Record<string, unknown> | null;
};

/** Which changes a reader wants: all, one connection's, or one account's. */
export type ChangeFilter = { connectionId?: string | null; accountId?: string | null };

/** The feed's bounds: the last number handed out, and through which number rows were pruned. */
export type FeedBounds = { head: number; prunedThrough: number };

/** The head and the pruned boundary of the feed. */
export async function feedBounds(sql: Sql | Tx): Promise<FeedBounds> {
  const [row] = await sql<{ head: number; pruned: number }[]>`
    select last_seq::float8 as head, pruned_through::float8 as pruned from change_feed_state`;
  return { head: row.head, prunedThrough: row.pruned };
}

/**
 * Up to `limit` committed changes with seq > `after`, in order, optionally filtered. Rows get a
 * seq only in the commit that makes them visible, in seq order, so this never skips a row. An
 * occurrence change carries the row as the mirror holds it now (null once deleted): the feed
 * stores ids only, and a consumer applying changes in order ends with the mirror.
 */
export async function readChanges(
  sql: Sql | Tx,
  after: number,
  limit: number,
  filter: ChangeFilter = {},
): Promise<ChangeRow[]> {
  const connectionId = filter.connectionId ?? null;
  const accountId = filter.accountId ?? null;
  return await sql<ChangeRow[]>`
    select f.seq::float8 as seq, f.committed_at, f.connection_id, f.account_id, f.type,
      f.external_event_id,
      case when f.external_event_id is null then f.data else change_feed_event_data(e) end as data
    from change_feed f
    left join external_calendar_events e on f.external_event_id is not null
      and e.connection_id = f.connection_id and e.external_event_id = f.external_event_id
    where f.seq > ${after}
      and (${connectionId}::uuid is null or f.connection_id = ${connectionId}::uuid)
      and (${accountId}::uuid is null or f.account_id = ${accountId}::uuid)
    order by f.seq
    limit ${limit}`;
}

/** The commit time of change `seq` (null if pruned or not yet numbered). */
export async function changeCommittedAt(sql: Sql | Tx, seq: number): Promise<Date | null> {
  const [row] = await sql<{ committed_at: Date }[]>`
    select committed_at from change_feed where seq = ${seq}`;
  return row?.committed_at ?? null;
}

/** The first seq committed at or after `since` (the head + 1 when none is). */
export async function firstSeqSince(sql: Sql | Tx, since: Date): Promise<number> {
  const [row] = await sql<{ seq: number | null }[]>`
    select min(seq)::float8 as seq from change_feed where committed_at >= ${since}`;
  if (row.seq !== null) return row.seq;
  return (await feedBounds(sql)).head + 1;
}

/**
 * Prunes up to `batchSize` of the oldest changes committed before `olderThan` and at or below
 * `keepAfter` (what every active subscriber acknowledged); returns how many went. The pruned
 * boundary moves in the same statement, so a reader asking below it is told to re-read.
 */
export async function pruneChanges(
  sql: Sql,
  options: { olderThan: Date; keepAfter: number; batchSize: number },
): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    with victims as (
      select seq from change_feed
      where seq <= ${options.keepAfter} and committed_at < ${options.olderThan}
      order by seq
      limit ${options.batchSize}
    ), gone as (
      delete from change_feed f using victims v where f.seq = v.seq returning f.seq
    ), moved as (
      update change_feed_state set pruned_through = greatest(pruned_through,
        (select max(seq) from gone))
      where exists (select 1 from gone)
      returning 1
    )
    select (select count(*) from gone)::int as n, (select count(*) from moved) as m`;
  return row.n;
}
