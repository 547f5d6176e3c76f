-- Schema v8: the change feed (a transactional outbox) and its subscribers.
--
-- Every committed change of the mirror appends a row to change_feed in the SAME transaction,
-- written by triggers so that no write path (upsert, tombstone, sweep, release-deletions, a
-- removed connection's cascade) can forget it:
--
-- * Occurrence rows: statement-level triggers with transition tables, one INSERT ... SELECT per
--   statement (a 2,500-event chunk costs one extra statement, not 2,500). An update counts only
--   when a column a consumer sees differs (etag, fields, raw): a re-sync of an unchanged calendar
--   rewrites sync_generation/synced_at and appends nothing.
-- * Connections: a row trigger, only when status changes or the first success is recorded, and
--   one when a connection is removed.
--
-- Change rows are thin (ids, type, seq): readers join the occurrence as the mirror holds it when
-- they read (see src/storage/change_feed.ts). Copying every row's fields into the feed in the
-- writing transaction cost a full sync about a third of its throughput (deno task bench).
--
-- Ordering (why seq is gap-free for readers). A sequence value taken during a transaction is
-- not commit order: T1 takes 5, T2 takes 6 and commits first, a reader sees 6 and would skip 5
-- when T1 commits later. We rejected reading below the oldest in-flight xid
-- (pg_snapshot_xmin(pg_current_snapshot())): it orders by xid, not by a number a consumer can
-- resume from, and any long transaction on the server stalls every reader. Instead the triggers
-- stage the transaction's changes in a session-local temporary table, and a deferred constraint
-- trigger numbers them AT COMMIT (the single ordering step): it takes the row lock on the
-- one-row change_feed_state, inserts the staged changes as last_seq+1.., and holds that lock
-- until the commit is visible. PostgreSQL makes a commit visible (ProcArrayEndTransaction)
-- before it releases the transaction's locks, so the next numbering transaction starts only
-- after every smaller number is visible, and a rolled-back transaction never wrote its rows nor
-- moved last_seq: readers that ask for seq > N never miss a row that commits later, and there
-- are no holes. The cost: commits that append changes serialise on that row for the length of
-- their commit (the WAL flush). The staging table is temporary (no WAL, emptied at commit) and
-- holds one row per statement (an array of ids), so each change is written once, by the
-- numbering step. change_feed has only its primary key: filtered readers (one connection, one
-- account) scan forward by seq from their offset, and a subscriber's offset moves to the head
-- whenever nothing after it matches, so each change is scanned about once per subscriber.
set local lock_timeout = '5s';

create table change_feed (
  seq bigint primary key,
  committed_at timestamptz not null,
  connection_id uuid,
  -- Filled once connections belong to accounts (no FK: changes outlive what they describe).
  account_id uuid,
  -- event.created, event.updated, event.deleted, connection.<state>.
  type text not null,
  external_event_id text,
  -- A connection change's new state; null for occurrences (readers join the mirror's row).
  data jsonb
);


-- The ordering step's one row: the last number handed out and what retention removed.
create table change_feed_state (
  one boolean primary key default true check (one),
  last_seq bigint not null default 0,
  pruned_through bigint not null default 0
);
insert into change_feed_state default values;

-- Numbers and publishes the transaction's staged changes; runs once, at commit.
create function change_feed_number() returns trigger language plpgsql as $$
declare
  base bigint;
  n bigint;
begin
  select coalesce(sum(coalesce(cardinality(external_event_ids), 1)), 0) into n
  from pg_temp.change_feed_staged;
  if n = 0 then
    return null;
  end if;
  update change_feed_state set last_seq = last_seq + n returning last_seq - n into base;
  -- The account comes from the connection here, in this one place, once per transaction. A
  -- removed connection is gone by commit: its connection.removed row stages the account from
  -- OLD, and the cascade's event.deleted rows of the same transaction take it from there.
  insert into change_feed (seq, committed_at, connection_id, account_id, type, external_event_id,
    data)
  select base + row_number() over (order by s.id, u.ord), clock_timestamp(), s.connection_id,
    coalesce(s.account_id, c.account_id, removed.account_id), s.type, u.event_id, s.data
  from pg_temp.change_feed_staged s
  left join external_calendar_connections c on c.id = s.connection_id
  left join lateral (
    select r.account_id from pg_temp.change_feed_staged r
    where r.connection_id = s.connection_id and r.account_id is not null limit 1
  ) removed on true
  left join lateral unnest(s.external_event_ids) with ordinality as u(event_id, ord) on true;
  perform pg_notify('calsync_changes', (base + n)::text);
  return null;
end $$;

-- Makes this session's staging table (once per session) and queues the commit-time numbering
-- (once per transaction: one marker row fires one deferred trigger).
create function change_feed_stage() returns void language plpgsql as $$
begin
  if to_regclass('pg_temp.change_feed_staged') is null then
    create temp table change_feed_staged (
      id bigint generated always as identity,
      connection_id uuid,
      account_id uuid,
      type text not null,
      -- One staged row per statement and connection: the ids it changed (never empty), or
      -- null for a connection change.
      external_event_ids text[],
      data jsonb
    ) on commit delete rows;
    create temp table change_feed_marker (one boolean) on commit delete rows;
    create constraint trigger change_feed_number_at_commit
      after insert on pg_temp.change_feed_marker deferrable initially deferred
      for each row execute function change_feed_number();
  end if;
  if current_setting('calsync.change_feed_marked', true) is distinct from
      pg_current_xact_id()::text then
    perform set_config('calsync.change_feed_marked', pg_current_xact_id()::text, true);
    insert into pg_temp.change_feed_marker values (true);
  end if;
end $$;

-- What a consumer sees of an occurrence row (raw stays in the mirror: read it there).
create function change_feed_event_data(e external_calendar_events) returns jsonb
language sql stable as $$
  select to_jsonb(e) - 'raw' - 'sync_generation' - 'synced_at'
$$;

create function change_feed_events_inserted() returns trigger language plpgsql as $$
begin
  perform change_feed_stage();
  insert into pg_temp.change_feed_staged (connection_id, account_id, type, external_event_ids)
  select n.connection_id, null, 'event.created', array_agg(n.external_event_id)
  from new_rows n group by n.connection_id;
  return null;
end $$;

create function change_feed_events_updated() returns trigger language plpgsql as $$
begin
  perform change_feed_stage();
  insert into pg_temp.change_feed_staged (connection_id, account_id, type, external_event_ids)
  select n.connection_id, null, 'event.updated', array_agg(n.external_event_id)
  from new_rows n
  join old_rows o on o.connection_id = n.connection_id
    and o.external_event_id = n.external_event_id
  where (o.etag, o.status, o.occurrence_kind, o.series_id, o.original_starts_at,
      o.original_start_date, o.title, o.starts_at, o.ends_at, o.start_date, o.end_date,
      o.all_day, o.time_zone, o.location, o.organizer_email, o.response_status, o.busy_status,
      o.blocks_time, o.visibility, o.event_type, o.web_link, o.ical_uid, o.provider_updated_at,
      o.raw)
    is distinct from
    (n.etag, n.status, n.occurrence_kind, n.series_id, n.original_starts_at,
      n.original_start_date, n.title, n.starts_at, n.ends_at, n.start_date, n.end_date,
      n.all_day, n.time_zone, n.location, n.organizer_email, n.response_status, n.busy_status,
      n.blocks_time, n.visibility, n.event_type, n.web_link, n.ical_uid, n.provider_updated_at,
      n.raw)
  group by n.connection_id;
  return null;
end $$;

create function change_feed_events_deleted() returns trigger language plpgsql as $$
begin
  perform change_feed_stage();
  insert into pg_temp.change_feed_staged (connection_id, account_id, type, external_event_ids)
  select o.connection_id, null, 'event.deleted', array_agg(o.external_event_id)
  from old_rows o group by o.connection_id;
  return null;
end $$;

create trigger change_feed_events_insert after insert on external_calendar_events
  referencing new table as new_rows
  for each statement execute function change_feed_events_inserted();
create trigger change_feed_events_update after update on external_calendar_events
  referencing old table as old_rows new table as new_rows
  for each statement execute function change_feed_events_updated();
create trigger change_feed_events_delete after delete on external_calendar_events
  referencing old table as old_rows
  for each statement execute function change_feed_events_deleted();

create function change_feed_connection_changed() returns trigger language plpgsql as $$
begin
  perform change_feed_stage();
  insert into pg_temp.change_feed_staged (connection_id, account_id, type, data)
  values (
    new.id,
    null,
    case when new.status is distinct from old.status then 'connection.' || new.status
      else 'connection.first_synced' end,
    jsonb_build_object('status', new.status, 'previous_status', old.status,
      'last_success_at', new.last_success_at, 'last_error', new.last_error)
  );
  return null;
end $$;

create trigger change_feed_connection_state after update on external_calendar_connections
  for each row
  when (new.status is distinct from old.status
    or (old.last_success_at is null and new.last_success_at is not null))
  execute function change_feed_connection_changed();

-- A removed connection (its rows' event.deleted follow: the cascade's triggers fire later).
create function change_feed_connection_removed() returns trigger language plpgsql as $$
begin
  perform change_feed_stage();
  insert into pg_temp.change_feed_staged (connection_id, account_id, type, data)
  values (old.id, old.account_id, 'connection.removed',
    jsonb_build_object('previous_status', old.status));
  return null;
end $$;

create trigger change_feed_connection_removed after delete on external_calendar_connections
  for each row execute function change_feed_connection_removed();

-- Subscribers: where changes are delivered, each with its own durable offset.
create table change_subscribers (
  id uuid primary key default gen_random_uuid(),
  url text not null check (length(url) between 1 and 2048),
  connection_id uuid,
  account_id uuid,
  -- whsec_ secrets; previous stays valid (signed with both) until previous_expires_at.
  secret text not null,
  previous_secret text,
  previous_expires_at timestamptz,
  status text not null default 'active' check (status in ('active', 'paused')),
  paused_reason text,
  -- Every change with seq <= acked_seq has been delivered (or did not match the filter).
  acked_seq bigint not null default 0,
  -- Bumped by replay so a re-delivery gets new webhook-ids.
  replay_generation integer not null default 0,
  -- The message in flight: its content is fixed at the first attempt, retries resend it.
  inflight_seq bigint,
  inflight_id text,
  inflight_body text,
  attempts integer not null default 0,
  failing_since timestamptz,
  last_error jsonb,
  next_attempt_at timestamptz not null default now(),
  lease_owner text,
  lease_expires_at timestamptz,
  delivered_total bigint not null default 0,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create index change_subscribers_due_idx on change_subscribers (next_attempt_at)
  where status = 'active';
