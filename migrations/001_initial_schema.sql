-- Schema v1. Table and column names follow the operators' outage drill, so its verification
-- queries run unchanged against a live database.

create table calendar_providers (
  id uuid primary key default gen_random_uuid(),
  kind text not null check (kind in ('google', 'microsoft')),
  name text not null unique check (length(name) between 1 and 200),
  allowlisted boolean not null default false,
  created_at timestamptz not null default now()
);

create table external_calendar_connections (
  id uuid primary key default gen_random_uuid(),
  provider_id uuid not null references calendar_providers (id) on delete restrict,
  external_calendar_id text not null check (length(external_calendar_id) between 1 and 1024),
  account_label text,
  refresh_token text not null,
  status text not null default 'active'
    check (status in ('active', 'reauth_required', 'disabled')),
  -- Opaque provider cursor (Google sync/page token, Graph delta/next link) plus the state of an
  -- interrupted chunked sync; null means the next sync is a full sync.
  sync_cursor jsonb,
  sync_needed boolean not null default true,
  -- Every sync request bumps this counter; the claim remembers the value it saw, so a request
  -- that arrives during a sync leads to exactly one more sync after it.
  sync_requested_seq bigint not null default 1,
  sync_claimed_seq bigint not null default 0,
  -- When the connection may next be claimed: now, backoff_until, or its lease expiry. One
  -- column keeps the claim query on a single index range scan.
  due_at timestamptz not null default now(),
  error_count integer not null default 0 check (error_count >= 0),
  last_error jsonb,
  backoff_until timestamptz,
  last_synced_at timestamptz,
  last_success_at timestamptz,
  lease_owner text,
  lease_expires_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (provider_id, external_calendar_id)
);

create index external_calendar_connections_due_idx
  on external_calendar_connections (due_at)
  where sync_needed and status = 'active';

create table external_calendar_events (
  connection_id uuid not null references external_calendar_connections (id) on delete cascade,
  external_event_id text not null,
  etag text,
  status text not null,
  title text,
  starts_at timestamptz,
  ends_at timestamptz,
  all_day boolean not null default false,
  provider_updated_at timestamptz,
  raw jsonb not null,
  -- Full syncs mark every row they see with their generation and sweep the rest at the end, so
  -- a full resync never shows an empty calendar half-way.
  sync_generation bigint not null default 0,
  synced_at timestamptz not null default now(),
  primary key (connection_id, external_event_id)
);

create table webhook_dedupe_keys (
  key text primary key,
  provider text not null check (provider in ('google', 'microsoft')),
  connection_id uuid references external_calendar_connections (id) on delete cascade,
  received_at timestamptz not null default now()
);

create index webhook_dedupe_keys_received_at_idx on webhook_dedupe_keys (received_at);
