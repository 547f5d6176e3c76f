/**
 * @module SQL for `provider_health`: each provider's circuit breaker and quota bucket, shared by
 * every replica. Transitions are compare-and-set on the row's state (the replica whose UPDATE
 * matched made the transition and logs it); the probe schedule runs on the database's clock.
 */
import type { ProviderKind } from "../core/provider_kind.ts";
import type { Sql } from "./client.ts";

/** One provider's row. */
export type ProviderHealthRow = {
  provider: ProviderKind;
  state: "closed" | "half_open" | "open";
  changed_at: Date;
  reason: Record<string, unknown> | null;
  probe_interval_ms: number;
  probe_at: Date | null;
  probe_owner: string | null;
  probe_expires_at: Date | null;
  quota_per_minute: number | null;
  rate_limited_at: Date | null;
  /** The database's clock when the row was read, so callers compare times on one clock. */
  read_at: Date;
};

/**
 * Creates the rows of `providers` if missing. A new row counts as closed since the epoch, so a
 * fresh install starts with full lanes rather than a recovery's slow drain, and as refilled at
 * the epoch, so its bucket starts full.
 */
export async function ensureProviderHealth(
  sql: Sql,
  providers: readonly ProviderKind[],
): Promise<void> {
  await sql`
    insert into provider_health (provider, changed_at, quota_refilled_at)
    select unnest(${[...providers]}::text[]), to_timestamp(0), to_timestamp(0)
    on conflict (provider) do nothing`;
}

/** Every provider's row (two at most: one statement, a primary key scan). */
export async function readProviderHealth(sql: Sql): Promise<ProviderHealthRow[]> {
  return await sql<ProviderHealthRow[]>`
    select provider, state, changed_at, reason, probe_interval_ms, probe_at, probe_owner,
      probe_expires_at, quota_per_minute, rate_limited_at, now() as read_at
    from provider_health order by provider`;
}

/** closed -> open: stops claims of the provider; the first probe may start after `intervalMs`. */
export async function openBreaker(
  sql: Sql,
  provider: ProviderKind,
  intervalMs: number,
  reason: Record<string, unknown>,
): Promise<boolean> {
  const rows = await sql`
    update provider_health set state = 'open', changed_at = now(), reason = ${
    sql.json(reason as never)
  },
      probe_interval_ms = ${intervalMs},
      probe_at = now() + make_interval(secs => ${intervalMs / 1000}),
      probe_owner = null, probe_expires_at = null, updated_at = now()
    where provider = ${provider} and state = 'closed'
    returning provider`;
  return rows.length === 1;
}

/**
 * open -> half-open for `owner`, when the probe time has come; also takes over a probe whose
 * replica died (its lease expired). One replica wins; only it claims the probe connection.
 */
export async function startProbe(
  sql: Sql,
  provider: ProviderKind,
  owner: string,
  leaseMs: number,
): Promise<boolean> {
  const rows = await sql`
    update provider_health set state = 'half_open', changed_at = now(), probe_owner = ${owner},
      probe_expires_at = now() + make_interval(secs => ${leaseMs / 1000}), updated_at = now()
    where provider = ${provider}
      and ((state = 'open' and probe_at <= now())
        or (state = 'half_open' and probe_expires_at <= now()))
    returning provider`;
  return rows.length === 1;
}

/** half-open -> closed after `owner`'s probe succeeded; the drain starts at `changed_at`. */
export async function closeBreaker(
  sql: Sql,
  provider: ProviderKind,
  owner: string,
): Promise<boolean> {
  const rows = await sql`
    update provider_health set state = 'closed', changed_at = now(), probe_interval_ms = 0,
      probe_at = null, probe_owner = null, probe_expires_at = null, updated_at = now()
    where provider = ${provider} and state = 'half_open' and probe_owner = ${owner}
    returning provider`;
  return rows.length === 1;
}

/**
 * half-open -> open after `owner`'s probe failed (`intervalMs` grown by the caller), or with the
 * same interval when it found nothing to probe.
 */
export async function reopenBreaker(
  sql: Sql,
  provider: ProviderKind,
  owner: string,
  intervalMs: number,
): Promise<boolean> {
  const rows = await sql`
    update provider_health set state = 'open', changed_at = now(),
      probe_interval_ms = ${intervalMs},
      probe_at = now() + make_interval(secs => ${intervalMs / 1000}),
      probe_owner = null, probe_expires_at = null, updated_at = now()
    where provider = ${provider} and state = 'half_open' and probe_owner = ${owner}
    returning provider`;
  return rows.length === 1;
}

/** The quota's configured rate and AIMD shape (see src/lanes/token_bucket.ts). */
export type QuotaShape = {
  perMinute: number;
  burstSeconds: number;
  floorRatio: number;
  increasePerMinute: number;
};

/** The rate in force (token_bucket.ts `effectiveRate`), on the row `h`. */
function rateInForce(sql: Sql, quota: QuotaShape) {
  return sql`case when h.quota_per_minute is null or h.rate_limited_at is null
    then ${quota.perMinute}::float8
    else least(${quota.perMinute}::float8, h.quota_per_minute + ${quota.increasePerMinute}::float8
      * ${quota.perMinute}::float8 * extract(epoch from now() - h.rate_limited_at)::float8 / 60)
    end`;
}

/**
 * Takes up to `want` tokens from the provider's bucket, refilled to now at the rate in force
 * (token_bucket.ts `take`): one UPDATE of one row per batch of tokens.
 */
export async function takeQuotaTokens(
  sql: Sql,
  provider: ProviderKind,
  want: number,
  quota: QuotaShape,
): Promise<{ granted: number; perMinute: number }> {
  const rows = await sql<{ granted: number; per_minute: number }[]>`
    with level as (
      select h.provider, r.rate, least(r.rate / 60 * ${quota.burstSeconds}::float8,
        h.quota_tokens + extract(epoch from now() - h.quota_refilled_at)::float8 / 60 * r.rate)
        as tokens
      from provider_health h, lateral (select ${rateInForce(sql, quota)} as rate) r
      where h.provider = ${provider}
      for update of h
    )
    update provider_health h set
      quota_tokens = level.tokens - least(${want}::float8, floor(level.tokens)),
      quota_refilled_at = now()
    from level where h.provider = level.provider
    returning least(${want}::float8, floor(level.tokens))::int as granted,
      level.rate as per_minute`;
  return rows[0]
    ? { granted: rows[0].granted, perMinute: rows[0].per_minute }
    : { granted: want, perMinute: quota.perMinute };
}

/**
 * Multiplicative decrease after a rate limit: halves the rate in force (not below the floor). A
 * burst of rate limits from requests already in flight halves it once, not once per answer.
 */
export async function slowQuota(
  sql: Sql,
  provider: ProviderKind,
  quota: QuotaShape,
): Promise<number | null> {
  const rows = await sql<{ quota_per_minute: number }[]>`
    update provider_health h set
      quota_per_minute = greatest(${quota.floorRatio * quota.perMinute}::float8,
        ${rateInForce(sql, quota)} / 2),
      rate_limited_at = now(), updated_at = now()
    where h.provider = ${provider}
      and (h.rate_limited_at is null or h.rate_limited_at < now() - interval '2 seconds')
    returning h.quota_per_minute`;
  return rows[0]?.quota_per_minute ?? null;
}
