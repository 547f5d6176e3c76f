/**
 * @module Server-side generators of the scale bench: connections, events, dedupe keys and push
 * channels, in batches of at most BATCH_ROWS rows, each batch its own transaction with progress
 * logged, so a 10M-row load is many short statements rather than one transaction of minutes.
 *
 * Each batch runs with `session_replication_role = replica` (the bench connects as superuser):
 * no trigger fires for generated rows, neither the change feed's (these rows are fixtures, not
 * changes any consumer must see) nor the foreign-key checks (every generated row references a
 * row the same generator just selected from its parent table).
 */
import type { Sql, Tx } from "../src/storage/client.ts";

/** The largest batch: one statement and one commit per this many rows. */
export const BATCH_ROWS = 500_000;

/** One provider id per kind. */
export type Providers = { google: string; microsoft: string };

/** Progress lines go here (stderr). */
export type Log = (message: string) => void;

/** Runs `work(tx, from, to)` over 1..total in batches of `batch`, each committed separately. */
export async function inBatches(
  sql: Sql,
  what: { label: string; total: number; batch?: number; log: Log },
  work: (tx: Tx, from: number, to: number) => Promise<unknown>,
): Promise<number> {
  const batch = what.batch ?? BATCH_ROWS;
  const started = performance.now();
  for (let from = 1; from <= what.total; from += batch) {
    const to = Math.min(what.total, from + batch - 1);
    await sql.begin(async (tx) => {
      await tx`set local session_replication_role = replica`;
      await work(tx, from, to);
    });
    if (what.total > batch) {
      what.log(
        `scale: ${what.label} ${to.toLocaleString("en")} of ` +
          `${what.total.toLocaleString("en")} (${secs(started)} s)`,
      );
    }
  }
  return (performance.now() - started) / 1000;
}

/** Seconds since `started` (a performance.now() reading), one decimal. */
export function secs(started: number): string {
  return ((performance.now() - started) / 1000).toFixed(1);
}

/**
 * Adds idle connections `from+1`..`to`, half per provider, each due for its poll within 15 min.
 * `v1`: the schema before migration 006 (no reconcile_due_at) with a refresh token of its own per
 * connection, as v1 stored them (migration 007 moves each into an account).
 */
export async function addConnections(
  sql: Sql,
  input: { providers: Providers; from: number; to: number; v1: boolean; log: Log },
): Promise<number> {
  const { google, microsoft } = input.providers;
  return await inBatches(
    sql,
    { label: "connections", total: input.to - input.from, log: input.log },
    async (tx, from, to) => {
      const first = input.from + from;
      const last = input.from + to;
      const provider = tx`case when g % 2 = 0 then ${google}::uuid else ${microsoft}::uuid end`;
      if (input.v1) {
        await tx`
          insert into external_calendar_connections (provider_id, external_calendar_id,
            refresh_token, sync_needed, due_at, last_success_at, sync_requested_seq,
            sync_claimed_seq)
          select ${provider}, 'calendar-' || g, 'rt-' || g, false,
            now() + random() * interval '15 minutes', now(), 1, 1
          from generate_series(${first}::int, ${last}::int) g`;
        return;
      }
      await tx`
        insert into external_calendar_connections (provider_id, external_calendar_id,
          refresh_token, sync_needed, due_at, reconcile_due_at, last_success_at,
          sync_requested_seq, sync_claimed_seq)
        select ${provider}, 'calendar-' || g, 'rt', false,
          now() + random() * interval '15 minutes', now() + random() * interval '24 hours', now(),
          1, 1
        from generate_series(${first}::int, ${last}::int) g`;
    },
  );
}

/**
 * `perConnection` event rows for every connection, walking the connections' primary key so each
 * batch appends to the events' primary key in order (random uuid order thrashes a large index).
 * Columns of schema v1 only: it runs before migration 005 adds the occurrence model.
 */
export async function addEvents(
  sql: Sql,
  input: { connections: number; perConnection: number; log: Log },
): Promise<number> {
  const per = input.perConnection;
  const connectionsPerBatch = Math.max(1, Math.floor(BATCH_ROWS / per));
  let after = "00000000-0000-0000-0000-000000000000";
  return await inBatches(
    sql,
    {
      label: "events (connections done)",
      total: input.connections,
      batch: connectionsPerBatch,
      log: input.log,
    },
    async (tx, from, to) => {
      const [row] = await tx<{ last: string | null }[]>`
        with batch as (
          select id from external_calendar_connections where id > ${after}::uuid
          order by id limit ${to - from + 1}
        ),
        inserted as (
          insert into external_calendar_events (connection_id, external_event_id, status, title,
            starts_at, ends_at, raw)
          select c.id, 'event-' || g, 'confirmed', 'Event ' || g,
            now() + g * interval '1 day', now() + g * interval '1 day' + interval '1 hour',
            jsonb_build_object('id', 'event-' || g, 'summary', 'Event ' || g)
          from batch c cross join generate_series(1, ${per}) g
          order by c.id, 'event-' || g
        )
        select max(id::text) as last from batch`;
      if (row.last) after = row.last;
    },
  );
}

/** `count` dedupe keys, every other one past any TTL (received 4 days ago). */
export async function addDedupeKeys(sql: Sql, count: number, log: Log): Promise<number> {
  return await inBatches(sql, { label: "dedupe keys", total: count, log }, async (tx, from, to) => {
    await tx`
      insert into webhook_dedupe_keys (key, provider, received_at)
      select 'google:bench:' || g, 'google',
        case when g % 2 = 0 then now() - interval '4 days' else now() end
      from generate_series(${from}::int, ${to}::int) g`;
  });
}

/**
 * One active push channel per connection, stored as the daemon stores them without an encryption
 * key: a UUID channel id (Google) or subscription id (Graph), and a secret of 32 bytes in base64url
 * (generateChannelSecret's 43 characters; here the SHA-256 of a random UUID, server-side).
 */
export async function addChannels(sql: Sql, connections: number, log: Log): Promise<number> {
  let after = "00000000-0000-0000-0000-000000000000";
  return await inBatches(
    sql,
    { label: "channels", total: connections, log },
    async (tx, from, to) => {
      const [row] = await tx<{ last: string | null }[]>`
        with batch as (
          select c.id, p.kind from external_calendar_connections c
          join calendar_providers p on p.id = c.provider_id
          where c.id > ${after}::uuid order by c.id limit ${to - from + 1}
        ),
        inserted as (
          insert into webhook_channels (connection_id, provider, channel_id, secret, resource_id,
            expires_at, status)
          select id, kind, gen_random_uuid()::text,
            rtrim(translate(encode(sha256(gen_random_uuid()::text::bytea), 'base64'), '+/',
              '-_'), '='),
            case when kind = 'google' then 'res-' || left(md5(id::text), 18) end,
            now() + interval '7 days', 'active'
          from batch
        )
        select max(id::text) as last from batch`;
      if (row.last) after = row.last;
    },
  );
}
