-- calsync:no-transaction
-- Schema v9: per-provider lanes, circuit breakers and quotas (issue 15).
--
-- Runs outside a transaction so the claim index is built CONCURRENTLY: on a table with a
-- million connections a plain CREATE INDEX would block every claim, completion and webhook for
-- the build's duration. Every statement is safe to run again (a migrator that dies half-way
-- reruns the file); an index left INVALID by an interrupted build is dropped first, since
-- IF NOT EXISTS would otherwise keep it.
-- One row per provider kind, shared by every replica: the breaker's state and the quota bucket.
-- Replicas count failures locally (no write per request); only transitions and token batches
-- write here, a few statements per second at most.
create table if not exists provider_health (
  provider text primary key check (provider in ('google', 'microsoft')),
  state text not null default 'closed' check (state in ('closed', 'half_open', 'open')),
  -- When `state` last changed; in `closed` after a recovery it starts the bounded drain.
  changed_at timestamptz not null default now(),
  -- What opened the breaker last (kind, status, failure ratio), for `calsync status`.
  reason jsonb,
  -- Open: the next probe may start at probe_at; each failed probe doubles the interval.
  probe_interval_ms integer not null default 0 check (probe_interval_ms >= 0),
  probe_at timestamptz,
  -- Half-open: the replica running the one probe, until its lease expires.
  probe_owner text,
  probe_expires_at timestamptz,
  -- Token bucket: tokens left as of quota_refilled_at; refilled at quota_per_minute, which
  -- rate limits halve (AIMD) and quiet minutes grow back to the configured quota.
  quota_tokens float8 not null default 0,
  quota_refilled_at timestamptz not null default now(),
  quota_per_minute float8,
  rate_limited_at timestamptz,
  updated_at timestamptz not null default now()
);

-- Claims are made per provider: a range scan on (provider_id, due_at) for one provider never
-- walks past another provider's due rows (a backlog held by an open breaker, say). Rows due for
-- a poll or reconciliation have sync_needed = false, so the index covers every active row, as
-- migration 006's poll index does.
do $$ begin if exists (select 1 from pg_index i join pg_class c on c.oid = i.indexrelid where c.relname = 'external_calendar_connections_provider_due_idx' and not i.indisvalid) then execute 'set local lock_timeout = ''5s'''; execute 'drop index external_calendar_connections_provider_due_idx'; end if; end $$;
create index concurrently if not exists external_calendar_connections_provider_due_idx
  on external_calendar_connections (provider_id, due_at)
  where status = 'active';
