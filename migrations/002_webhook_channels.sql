-- Schema v2: push channels. One row per Google watch channel or Microsoft Graph subscription.

create table webhook_channels (
  id uuid primary key default gen_random_uuid(),
  connection_id uuid not null references external_calendar_connections (id) on delete cascade,
  provider text not null check (provider in ('google', 'microsoft')),
  -- Google: the channel id we choose (a UUID), set before the watch call because Google's first
  -- `sync` message can arrive before the watch response. Graph: the subscription id, known only
  -- once the create call returns (its validation handshake needs no row), so null until then.
  channel_id text check (length(channel_id) between 1 and 256),
  -- Google channel token / Graph clientState: random, compared in constant time by the webhooks.
  secret text not null check (length(secret) between 32 and 128),
  -- Google's resourceId, needed by channels.stop; null for Graph and until the watch returns.
  resource_id text,
  expires_at timestamptz,
  -- creating: not yet confirmed by the provider (also a failed creation waiting to retry);
  -- active: confirmed; stopping: replaced or orphaned, to be stopped at the provider;
  -- removed: Graph told us it deleted the subscription, so it must be recreated.
  status text not null default 'creating'
    check (status in ('creating', 'active', 'stopping', 'removed')),
  -- When this row next needs provider work (create, renew, stop); null means nothing to do.
  -- The channel maintenance pass claims connections that have a row due here.
  next_work_at timestamptz,
  error_count integer not null default 0 check (error_count >= 0),
  last_error jsonb,
  created_at timestamptz not null default now(),
  renewed_at timestamptz
);

create unique index webhook_channels_channel_idx on webhook_channels (provider, channel_id)
  where channel_id is not null;
create index webhook_channels_connection_idx on webhook_channels (connection_id);
create index webhook_channels_work_idx on webhook_channels (next_work_at)
  where next_work_at is not null;
