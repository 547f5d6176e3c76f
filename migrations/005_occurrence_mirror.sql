-- calsync:no-transaction
-- calsync:replaces 9f5f88b6100d02b891d9a54a2b8c57ac04ecbf6fb308dad52641735e8abb35e8
-- (the text before its last statement marked every connection in one UPDATE; same effect)
-- Schema v5: the mirror holds occurrences as the calendar shows them, in one model for both
-- providers (issue 11). Safe on a large table: every column is nullable or has a constant
-- default (PostgreSQL 11+ stores those in the catalogue, no rewrite), checks are NOT VALID (no
-- scan; new rows are checked), and the indexes are built CONCURRENTLY, so writes go on while
-- they build. That needs autocommit, hence the directive above: each statement runs on its own
-- under the migration lock, and each is safe to run again if the migrator dies half-way.
set lock_timeout = '5s';

alter table external_calendar_events
  add column if not exists occurrence_kind text,
  add column if not exists series_id text,
  add column if not exists original_starts_at timestamptz,
  add column if not exists original_start_date date,
  add column if not exists start_date date,
  add column if not exists end_date date,
  add column if not exists time_zone text,
  add column if not exists location text,
  add column if not exists organizer_email text,
  add column if not exists response_status text,
  add column if not exists busy_status text,
  add column if not exists blocks_time boolean not null default true,
  add column if not exists visibility text,
  add column if not exists event_type text,
  add column if not exists web_link text,
  add column if not exists ical_uid text;

alter table external_calendar_events
  drop constraint if exists external_calendar_events_occurrence_kind_check;

alter table external_calendar_events
  add constraint external_calendar_events_occurrence_kind_check
  check (occurrence_kind in ('single', 'occurrence', 'exception')) not valid;

alter table external_calendar_events
  drop constraint if exists external_calendar_events_response_status_check;

alter table external_calendar_events
  add constraint external_calendar_events_response_status_check
  check (response_status in ('accepted', 'declined', 'tentative', 'needs_action', 'organizer'))
  not valid;

-- Series masters (Google recurring event, Graph seriesMaster): rule, exceptions, raw resource.
create table if not exists external_calendar_series (
  connection_id uuid not null references external_calendar_connections (id) on delete cascade,
  series_id text not null,
  etag text,
  raw jsonb not null,
  sync_generation bigint not null default 0,
  synced_at timestamptz not null default now(),
  primary key (connection_id, series_id)
);

reset lock_timeout;

-- A migrator that died mid-build leaves an INVALID index that IF NOT EXISTS would keep: drop
-- first (this file reruns only when it was not recorded, so nothing valid is lost for long).
drop index concurrently if exists external_calendar_events_time_idx;

-- "Connection, time range" for timed events (and "all calendars of an account": connection_id
-- = any(...)); ends_at rides along so an overlap test needs no heap visit.
create index concurrently if not exists external_calendar_events_time_idx
  on external_calendar_events (connection_id, starts_at) include (ends_at)
  where start_date is null;

drop index concurrently if exists external_calendar_events_date_idx;

-- The same for all-day events, which are dates.
create index concurrently if not exists external_calendar_events_date_idx
  on external_calendar_events (connection_id, start_date) include (end_date)
  where start_date is not null;

drop index concurrently if exists external_calendar_events_series_idx;

-- Deleting a series removes its occurrences.
create index concurrently if not exists external_calendar_events_series_idx
  on external_calendar_events (connection_id, series_id) where series_id is not null;

-- v1 rows hold series masters at their first date and all-day events at UTC midnight: every
-- connection with rows gets a full sync, which rewrites them and sweeps the rest. Its cursor and
-- everything else about the connection stay; the note is logged by the migrator. Marked in
-- batches of 1,000 along the primary key, each committed, so no statement holds many rows'
-- locks for long (one UPDATE of every row held webhook writes ~4 s at 100k connections); a
-- rerun after a crash marks the remaining ones again, which only asks for the same full sync.
set statement_timeout = 0;

do $$
declare
  last_id uuid := '00000000-0000-0000-0000-000000000000';
  batch_end uuid;
  marked bigint := 0;
  n bigint;
begin
  loop
    select id into batch_end from external_calendar_connections
    where id > last_id order by id offset 999 limit 1;
    if batch_end is null then
      select id into batch_end from external_calendar_connections
      where id > last_id order by id desc limit 1;
    end if;
    exit when batch_end is null;
    update external_calendar_connections c set
      full_sync_requested_seq = c.sync_requested_seq + 1,
      sync_requested_seq = c.sync_requested_seq + 1,
      sync_needed = true,
      due_at = case
        when c.lease_owner is not null and c.lease_expires_at > now() then c.lease_expires_at
        else greatest(now(), coalesce(c.backoff_until, now())) end,
      updated_at = now()
    -- A scalar subquery, probed per connection through the events' primary key: an EXISTS
    -- would be planned as a semi join, and with no statistics for the new column yet that was
    -- a scan of every event row per batch (12 minutes for 10M events).
    where c.id > last_id and c.id <= batch_end
      and (select true from external_calendar_events e
        where e.connection_id = c.id and e.occurrence_kind is null limit 1);
    get diagnostics n = row_count;
    marked := marked + n;
    last_id := batch_end;
    commit;
  end loop;
  perform set_config('calsync.migration_005_marked', marked::text, false);
end
$$;

reset statement_timeout;

select format('%s connections marked for a full sync to rebuild their mirror as occurrences',
  current_setting('calsync.migration_005_marked')) as calsync_note;
