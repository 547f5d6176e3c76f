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

-- The backfill is one statement that commits as it goes: the session's statement timeout would
-- cut it on a large table, so it is lifted until the end of this file.
set statement_timeout = 0;

do $$
declare
  last_id uuid := '00000000-0000-0000-0000-000000000000';
  batch_end uuid;
begin
  loop
    -- Walks the primary key once (each batch starts after the previous one's last id), so the
    -- backfill reads the table once however large it is.
    select id into batch_end from external_calendar_connections
    where id > last_id order by id offset 999 limit 1;
    if batch_end is null then
      -- The last, partial batch.
      select id into batch_end from external_calendar_connections
      where id > last_id order by id desc limit 1;
    end if;
    exit when batch_end is null;
    -- 1. An account for every token of the batch that has none yet (tokens repeat across
    --    batches: the md5 index finds the earlier one).
    insert into calendar_accounts (provider_id, refresh_token, label)
    select distinct on (c.provider_id, c.refresh_token) c.provider_id, c.refresh_token,
      c.account_label
    from external_calendar_connections c
    where c.id > last_id and c.id <= batch_end
      and c.account_id is null and c.refresh_token is not null
      and not exists (
        select 1 from calendar_accounts a
        where a.provider_id = c.provider_id and md5(a.refresh_token) = md5(c.refresh_token)
          and a.refresh_token = c.refresh_token)
    order by c.provider_id, c.refresh_token, c.account_label nulls last;
    -- 2. The batch's connections join their account; their own copy of the token goes.
    update external_calendar_connections c set account_id = a.id, refresh_token = null
    from calendar_accounts a
    where c.id > last_id and c.id <= batch_end
      and c.account_id is null and c.refresh_token is not null
      and a.provider_id = c.provider_id and md5(a.refresh_token) = md5(c.refresh_token)
      and a.refresh_token = c.refresh_token;
    -- 3. An account made in an earlier batch keeps a label found in this one.
    update calendar_accounts a set label = c.account_label
    from external_calendar_connections c
    where c.id > last_id and c.id <= batch_end and c.account_id = a.id
      and a.label is null and c.account_label is not null;
    last_id := batch_end;
    commit;
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

reset statement_timeout;

select format('%s v1 connections belong to %s accounts', count(*) filter (where account_id is not null),
  count(distinct account_id)) as calsync_note
from external_calendar_connections;
