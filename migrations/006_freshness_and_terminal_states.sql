-- Schema v6: the safety-net poll, freshness, daily reconciliation, terminal states and held
-- deletions. Safe on a large table: every statement is metadata-only or fast.
--
-- * lock_timeout: the ALTERs need a brief ACCESS EXCLUSIVE lock; waiting behind a long
--   transaction would queue every webhook behind us, so give up instead and let the next start
--   retry the migration.
-- * New columns are nullable without defaults: no table rewrite.
-- * The status check is replaced NOT VALID: adding it is instant, and every existing row already
--   satisfies it (the old check allowed a subset of the new values), so it is never validated in
--   this transaction (VALIDATE would scan the table while we hold the ALTER's lock).
-- * Existing rows' due times are NOT rewritten here: a connection is polled only once
--   `reconcile_due_at` is set, and the daemon's maintenance pass sets it (with a jittered due
--   time) in small batches (`scheduleUnscheduledConnections`), so 100k idle rows neither get
--   one long row lock nor all become due in the same second.
-- * The poll index is built with plain CREATE INDEX because migrations run in a transaction,
--   where CONCURRENTLY is not allowed. It is small (one timestamp per connection) and builds in
--   well under a second on 100k rows, blocking writes meanwhile. On a larger table, build it
--   first with the same statement plus CONCURRENTLY (see the README's upgrade note): the
--   IF NOT EXISTS below then skips it.
set local lock_timeout = '5s';

alter table external_calendar_connections
  -- When the last push notification for this connection was recorded.
  add column last_notification_at timestamptz,
  -- When the last reconciliation (full listing compared with the mirror) completed.
  add column last_verified_at timestamptz,
  -- When the next reconciliation is due; null: not yet scheduled (see above).
  add column reconcile_due_at timestamptz,
  -- When a poll found changes no notification announced; until a notification arrives after it,
  -- the connection is polled at the short interval even with a live channel.
  add column push_missed_at timestamptz;

alter table external_calendar_connections
  drop constraint external_calendar_connections_status_check;
alter table external_calendar_connections
  add constraint external_calendar_connections_status_check check (status in (
    'active', 'reauth_required', 'disabled', 'calendar_unavailable', 'deletions_held'
  )) not valid;

-- Idle connections wait here for their poll or reconciliation; requested ones stay on the due
-- index of migration 001 as well.
create index if not exists external_calendar_connections_poll_idx
  on external_calendar_connections (due_at)
  where status = 'active';

-- Deletions a sync held back because they looked like a provider fault (the mass-deletion
-- guard); `calsync connections release-deletions` applies or discards them.
create table held_event_deletions (
  connection_id uuid not null references external_calendar_connections (id) on delete cascade,
  external_event_id text not null,
  held_at timestamptz not null default now(),
  primary key (connection_id, external_event_id)
);
