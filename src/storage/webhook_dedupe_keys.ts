/** @module SQL for `webhook_dedupe_keys`: recording webhook deliveries once, and pruning. */
import { DatabaseDeadlineError } from "../core/errors.ts";
import { cancelOnAbort, type Sql } from "./client.ts";
import { SYNC_CHANNEL, syncRequestAssignments } from "./connections.ts";

/** What recording one delivery did. */
export type RecordOutcome = "accepted" | "duplicate" | "unknown_channel";

/**
 * How a recording statement is bounded: `signal` cancels it, and `notAfter` makes it write
 * nothing when it starts later than that by the database's clock (its bytes were held up on the
 * way while the caller had already answered 503).
 */
export type RecordBounds = { signal?: AbortSignal; notAfter?: Date };

function expired(what: string): DatabaseDeadlineError {
  return new DatabaseDeadlineError(
    `${what} reached the database after its deadline (by the database's clock) and wrote nothing`,
  );
}

/** One Google change notification to record: its dedupe key and the channel it names. */
export type GoogleRecord = { key: string; channelId: string };

/**
 * What recording did with one record of a batch: `deferred` when its connection was locked (a
 * sync writing it) and the batch did not wait, so nothing of it was written.
 */
export type BatchOutcome = RecordOutcome | "deferred";

/**
 * Records Google change notifications in one statement (one statement is one transaction, and
 * round trips and commits are the cost; deliveries that arrive together share them): for each
 * record whose channel is still known, inserts the dedupe key and, only if the key is new,
 * requests a sync exactly as `requestSync` does (request counter, `sync_needed`, `due_at`
 * respecting a backoff or a running sync's lease), once per connection. Returns one outcome per
 * record, in order; a key twice in one call is recorded for the first and a duplicate after.
 *
 * A batch does not wait for a connection another transaction holds (a sync's write transaction
 * locks its connection until it commits, for seconds at worst): those records come back
 * `deferred`, with nothing written, so one busy connection delays only its own deliveries, and
 * a batch can never be one side of a lock cycle. `waitForLocks` (one delivery alone) waits.
 *
 * It NOTIFYs the scheduler only for connections that were idle: PostgreSQL serialises the
 * commits of NOTIFYing transactions (about 3x fewer deliveries/s at 32 clients in `deno task
 * bench`), and a connection that was already due is known to the scheduler, or is being synced
 * and goes again when that run completes.
 */
export async function recordGoogleNotifications(
  sql: Sql,
  records: readonly GoogleRecord[],
  bounds: RecordBounds & { waitForLocks?: boolean } = {},
): Promise<BatchOutcome[]> {
  if (records.length === 0) return [];
  // A key twice in one batch is sent once: its repeats share the first one's fate, or are
  // duplicates of it. Outcomes are worked out here, so the statement returns four arrays.
  const unique = [...new Map(records.map((r) => [r.key, r])).values()];
  const channelIds = unique.map((r) => r.channelId);
  const [row] = await cancelOnAbort(
    sql<{ live: boolean; known: string[]; held: string[]; fresh: string[]; n: number }[]>`
    with live as (
      select clock_timestamp() <= coalesce(${bounds.notAfter ?? null}::timestamptz, 'infinity')
        as ok
    ),
    input as (
      select t.key, t.channel_id
      from unnest(${unique.map((r) => r.key)}::text[], ${channelIds}::text[]) as t(key, channel_id)
      where (select ok from live)
    ),
    channel as (
      select i.key, w.connection_id from input i
      join webhook_channels w on w.provider = 'google' and w.channel_id = i.channel_id
    ),
    locked as (
      -- FOR UPDATE reads the row's latest committed state (a sync may just have completed),
      -- which the statement's snapshot alone could miss. Locked before any key is written.
      select c.id, c.sync_needed from external_calendar_connections c
      where c.id in (select connection_id from channel)
      order by c.id
      for update of c ${bounds.waitForLocks ? sql`` : sql`skip locked`}
    ),
    held as (
      select ch.key, ch.connection_id from channel ch join locked l on l.id = ch.connection_id
    ),
    inserted as (
      insert into webhook_dedupe_keys (key, provider, connection_id)
      select key, 'google', connection_id from held order by key
      on conflict (key) do nothing
      returning key, connection_id
    ),
    requested as (
      update external_calendar_connections c set
        ${syncRequestAssignments(sql, { notification: true })}
      from locked l
      where c.id = l.id and c.id in (select connection_id from inserted)
      returning c.id, l.sync_needed as was_needed
    )
    select
      (select ok from live) as live,
      array(select key from channel) as known,
      array(select key from held) as held,
      array(select key from inserted) as fresh,
      -- An aggregate's argument is evaluated for every row, so each idle row is notified.
      (select count(pg_notify(${SYNC_CHANNEL}, r.id::text)) from requested r
        where not r.was_needed)::int as n`,
    bounds.signal,
  );
  if (!row.live) throw expired("Recording Google notifications");
  return batchOutcomes(records, row);
}

/** Each record's outcome from what the statement found, held and inserted, by key. */
function batchOutcomes(
  records: readonly GoogleRecord[],
  found: { known: string[]; held: string[]; fresh: string[] },
): BatchOutcome[] {
  const [known, held, fresh] = [new Set(found.known), new Set(found.held), new Set(found.fresh)];
  const seen = new Set<string>();
  return records.map(({ key }) => {
    const repeat = seen.has(key);
    seen.add(key);
    if (!known.has(key)) return "unknown_channel";
    if (!held.has(key)) return "deferred";
    return fresh.has(key) && !repeat ? "accepted" : "duplicate";
  });
}

/** Records one Google change notification, waiting for its connection if a sync holds it. */
export async function recordGoogleNotification(
  sql: Sql,
  record: GoogleRecord,
  bounds: RecordBounds = {},
): Promise<RecordOutcome> {
  const [outcome] = await recordGoogleNotifications(sql, [record], {
    ...bounds,
    waitForLocks: true,
  });
  if (outcome === "deferred") throw new Error("A recording that waits for locks was deferred");
  return outcome;
}

/** One validated Graph notification: its dedupe key and what a new one asks for. */
export type GraphRecord = {
  key: string;
  subscriptionId: string;
  /** sync: a change; full_sync: `missed`; renew/recreate: lifecycle work for the maintenance pass. */
  action: "sync" | "full_sync" | "renew" | "recreate";
};

/**
 * Records a whole Graph batch in one statement. For each item whose subscription is known and
 * whose key is new: `sync` and `full_sync` request a sync of its connection (once per connection,
 * `full_sync` also records a full-sync request that a running sync cannot overwrite); `renew` and `recreate` mark
 * the subscription for the maintenance pass, which talks to Graph outside the request. Returns
 * the keys whose subscription is known and the keys that were new.
 */
export async function recordGraphNotifications(
  sql: Sql,
  records: readonly GraphRecord[],
  bounds: RecordBounds = {},
): Promise<{ known: Set<string>; fresh: Set<string> }> {
  if (records.length === 0) return { known: new Set(), fresh: new Set() };
  const keys = records.map((r) => r.key);
  const subscriptions = records.map((r) => r.subscriptionId);
  const actions = records.map((r) => r.action);
  const [row] = await cancelOnAbort(
    sql<{ live: boolean; known: string[]; fresh: string[]; notified: number }[]>`
    with live as (
      select clock_timestamp() <= coalesce(${bounds.notAfter ?? null}::timestamptz, 'infinity')
        as ok
    ),
    input as (
      select distinct on (key) key, subscription_id, action
      from unnest(${keys}::text[], ${subscriptions}::text[], ${actions}::text[])
        as t(key, subscription_id, action)
      where (select ok from live)
    ),
    matched as (
      select i.key, i.action, w.id as channel_row, w.connection_id
      from input i
      join webhook_channels w on w.provider = 'microsoft' and w.channel_id = i.subscription_id
    ),
    inserted as (
      insert into webhook_dedupe_keys (key, provider, connection_id)
      select key, 'microsoft', connection_id from matched order by key
      on conflict (key) do nothing
      returning key
    ),
    fresh as (
      select m.* from matched m join inserted i on i.key = m.key
    ),
    lifecycle as (
      update webhook_channels w set
        status = case when f.recreate then 'removed' else w.status end,
        next_work_at = now()
      from (select channel_row, bool_or(action = 'recreate') as recreate
            from fresh where action in ('renew', 'recreate') group by channel_row) f
      -- Only a live subscription is renewed or recreated; one being stopped is left to finish.
      where w.id = f.channel_row and w.status = 'active'
      returning w.id
    ),
    previous as (
      -- As for Google: the row's latest committed state decides whether to NOTIFY, and rows
      -- are locked in id order.
      select c.id, c.sync_needed, f.full_sync from external_calendar_connections c
      join (select connection_id, bool_or(action = 'full_sync') as full_sync
            from fresh where action in ('sync', 'full_sync') group by connection_id) f
        on f.connection_id = c.id
      order by c.id
      for update of c
    ),
    requested as (
      update external_calendar_connections c set
        full_sync_requested_seq = case when f.full_sync then c.sync_requested_seq + 1
          else c.full_sync_requested_seq end,
        ${syncRequestAssignments(sql, { notification: true })}
      from previous f
      where c.id = f.id
      returning c.id, f.sync_needed as was_needed
    )
    select
      (select ok from live) as live,
      coalesce((select array_agg(key) from matched), '{}') as known,
      coalesce((select array_agg(key) from inserted), '{}') as fresh,
      (select count(*) from lifecycle)::int
        + (select count(pg_notify(${SYNC_CHANNEL}, r.id::text)) from requested r
          where not r.was_needed)::int as notified`,
    bounds.signal,
  );
  if (!row.live) throw expired("Recording Graph notifications");
  return { known: new Set(row.known), fresh: new Set(row.fresh) };
}

/** Deletes up to `batchSize` keys older than `ttlMs`; small batches keep locks short. */
export async function pruneDedupeKeys(sql: Sql, ttlMs: number, batchSize = 1_000): Promise<number> {
  const result = await sql`
    delete from webhook_dedupe_keys where key in (
      select key from webhook_dedupe_keys
      where received_at < now() - make_interval(secs => ${ttlMs / 1000})
      order by received_at
      limit ${batchSize}
    )`;
  return result.count;
}
