-- calsync:no-transaction
-- Schema v7: connected accounts (issue 13). One row per account at a provider holds the one
-- refresh token all its calendars share; a connection belongs to an account, and uniqueness is
-- (account, external calendar id), so two users' `primary` calendars can both be connected.
--
-- Safe on a large table: the new column is nullable (no rewrite), the foreign key is added NOT
-- VALID and validated after the backfill (VALIDATE takes a lock that lets writes go on), the
-- unique index is built CONCURRENTLY, and the backfill commits every 1,000 connections, so no
-- statement holds many row locks for long. That needs autocommit (the directive above); every
-- statement is safe to run again if the migrator dies half-way.
--
-- The drill's verification query (`id, provider_id, error_count, last_error, backoff_until,
-- sync_needed` from external_calendar_connections) is untouched: no column it reads changes.
set lock_timeout = '5s';

create table if not exists calendar_accounts (
  id uuid primary key default gen_random_uuid(),
  provider_id uuid not null references calendar_providers (id) on delete restrict,
  -- Google: the id token's `sub`; Microsoft: `oid` + '@' + `tid`. Null for accounts moved from
  -- v1 connections until a connect flow (or an id token on refresh) tells us who they are.
  subject text check (length(subject) between 1 and 512),
  email text check (length(email) between 1 and 512),
  -- The v1 connection's free-form `account_label`, kept for operators.
  label text,
  -- Sealed like the v1 column (see secret_box.ts); written only here from now on.
  refresh_token text not null,
  scopes text[] not null default '{}',
  status text not null default 'active'
    check (status in ('active', 'reauth_required', 'revoked')),
  last_error jsonb,
  last_refreshed_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create unique index if not exists calendar_accounts_subject_idx
  on calendar_accounts (provider_id, subject) where subject is not null;

-- PKCE and `state` of connect flows in progress: a state is used at most once (the callback
-- marks it used before it exchanges the code) and expires. Only a hash of the state is stored.
create table if not exists oauth_connect_states (
  state_hash text primary key,
  provider_id uuid not null references calendar_providers (id) on delete cascade,
  code_verifier text not null,
  redirect_uri text not null,
  -- Which calendars the callback connects: all, primary or none.
  calendars text not null check (calendars in ('all', 'primary', 'none')),
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  used_at timestamptz,
  -- What the callback did: connected (account_id set) or failed (error set); for the CLI.
  outcome text check (outcome in ('connected', 'failed')),
  account_id uuid references calendar_accounts (id) on delete set null,
  error text
);

create index if not exists oauth_connect_states_expiry_idx on oauth_connect_states (expires_at);

alter table external_calendar_connections add column if not exists account_id uuid;

-- Connections of an account read its token; theirs is null from now on (one copy of a secret).
alter table external_calendar_connections alter column refresh_token drop not null;

alter table external_calendar_connections
  drop constraint if exists external_calendar_connections_account_fk;

alter table external_calendar_connections
  add constraint external_calendar_connections_account_fk
  foreign key (account_id) references calendar_accounts (id) on delete restrict not valid;

reset lock_timeout;

-- One account per distinct stored refresh token (and provider), a batch at a time. The index on
-- the new (small) accounts table finds a token's account across batches; it is dropped below.
create index if not exists calendar_accounts_v1_token_idx
  on calendar_accounts (provider_id, md5(refresh_token));

do $$
declare
  moved integer;
begin
  loop
    with batch as (
      select id, provider_id, refresh_token, account_label
      from external_calendar_connections
      where account_id is null and refresh_token is not null
      order by id
      limit 1000
      for update
    ),
    tokens as (
      select distinct on (provider_id, refresh_token) provider_id, refresh_token, account_label
      from batch order by provider_id, refresh_token, account_label nulls last
    ),
    created as (
      insert into calendar_accounts (provider_id, refresh_token, label)
      select t.provider_id, t.refresh_token, t.account_label from tokens t
      where not exists (
        select 1 from calendar_accounts a
        where a.provider_id = t.provider_id and md5(a.refresh_token) = md5(t.refresh_token)
          and a.refresh_token = t.refresh_token)
      returning id, provider_id, refresh_token
    ),
    labelled as (
      update calendar_accounts a set label = t.account_label from tokens t
      where a.provider_id = t.provider_id and md5(a.refresh_token) = md5(t.refresh_token)
        and a.refresh_token = t.refresh_token and a.label is null and t.account_label is not null
    ),
    accounts as (
      select id, provider_id, refresh_token from created
      union all
      select a.id, a.provider_id, a.refresh_token from calendar_accounts a
      join tokens t on a.provider_id = t.provider_id
        and md5(a.refresh_token) = md5(t.refresh_token) and a.refresh_token = t.refresh_token
    ),
    moved_rows as (
      update external_calendar_connections c set account_id = a.id, refresh_token = null
      from batch b join accounts a
        on a.provider_id = b.provider_id and a.refresh_token = b.refresh_token
      where c.id = b.id
      returning c.id
    )
    select count(*) into moved from moved_rows;
    commit;
    exit when moved = 0;
  end loop;
end
$$;

drop index if exists calendar_accounts_v1_token_idx;

alter table external_calendar_connections validate constraint external_calendar_connections_account_fk;

drop index concurrently if exists external_calendar_connections_account_calendar_idx;

-- Replaces unique (provider_id, external_calendar_id): Alice's and Bob's `primary` may coexist.
create unique index concurrently if not exists external_calendar_connections_account_calendar_idx
  on external_calendar_connections (account_id, external_calendar_id);

set lock_timeout = '5s';

alter table external_calendar_connections
  drop constraint if exists external_calendar_connections_provider_id_external_calendar_key;

reset lock_timeout;

select format('%s v1 connections belong to %s accounts', count(*) filter (where account_id is not null),
  count(distinct account_id)) as calsync_note
from external_calendar_connections;
