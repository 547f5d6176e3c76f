/**
 * @module SQL for `change_subscribers`: where changes are delivered, each subscriber's durable
 * offset, its in-flight message, failures and the delivery lease.
 */
import { CHANGES_CHANNEL } from "./change_feed.ts";
import type { Sql, Tx } from "./client.ts";

// Wakes delivery loops (they LISTEN on the changes channel) when a subscriber has work at once.
async function wakeDelivery(sql: Sql | Tx): Promise<void> {
  await sql`select pg_notify(${CHANGES_CHANNEL}, 'subscribers')`;
}

/** A subscriber as operators see it (secrets are never read back by listings). */
export type SubscriberRow = {
  id: string;
  url: string;
  connection_id: string | null;
  account_id: string | null;
  status: "active" | "paused";
  paused_reason: string | null;
  acked_seq: number;
  attempts: number;
  failing_since: Date | null;
  last_error: Record<string, unknown> | null;
  next_attempt_at: Date;
  delivered_total: number;
  created_at: Date;
};

const COLUMNS = `id, url, connection_id, account_id, status, paused_reason,
  acked_seq::float8 as acked_seq, attempts, failing_since, last_error, next_attempt_at,
  delivered_total::float8 as delivered_total, created_at`;

/** A subscriber claimed for delivery, with what sending needs. */
export type ClaimedSubscriber = SubscriberRow & {
  leaseOwner: string;
  secret: string;
  previous_secret: string | null;
  previous_expires_at: Date | null;
  replay_generation: number;
  inflight_seq: number | null;
  inflight_id: string | null;
  inflight_body: string | null;
};

/**
 * Adds a subscriber. It starts after `fromSeq` when given, else at the head of the feed, read
 * in the same statement: it gets the changes committed after it was added.
 */
export async function insertSubscriber(
  sql: Sql,
  input: {
    url: string;
    connectionId: string | null;
    accountId: string | null;
    secret: string;
    fromSeq: number | null;
  },
): Promise<SubscriberRow> {
  const [row] = await sql<SubscriberRow[]>`
    insert into change_subscribers (url, connection_id, account_id, secret, acked_seq)
    select ${input.url}, ${input.connectionId}, ${input.accountId}, ${input.secret},
      coalesce(${input.fromSeq}::bigint, (select last_seq from change_feed_state))
    returning ${sql.unsafe(COLUMNS)}`;
  await wakeDelivery(sql);
  return row;
}

/** Every subscriber, oldest first. */
export async function listSubscribers(sql: Sql): Promise<SubscriberRow[]> {
  return await sql<SubscriberRow[]>`
    select ${sql.unsafe(COLUMNS)} from change_subscribers order by created_at, id`;
}

/** One subscriber, or null. */
export async function findSubscriber(sql: Sql, id: string): Promise<SubscriberRow | null> {
  const [row] = await sql<SubscriberRow[]>`
    select ${sql.unsafe(COLUMNS)} from change_subscribers where id = ${id}`;
  return row ?? null;
}

/** Removes a subscriber; false when there was none. */
export async function deleteSubscriber(sql: Sql, id: string): Promise<boolean> {
  const rows = await sql`delete from change_subscribers where id = ${id} returning id`;
  return rows.length === 1;
}

/** Pauses (with a reason) or resumes a subscriber; resuming retries at once. */
export async function setSubscriberStatus(
  sql: Sql | Tx,
  id: string,
  status: "active" | "paused",
  reason: string | null = null,
): Promise<SubscriberRow | null> {
  const [row] = await sql<SubscriberRow[]>`
    update change_subscribers set status = ${status},
      paused_reason = ${status === "paused" ? reason : null},
      failing_since = case when ${status} = 'active' then null else failing_since end,
      attempts = case when ${status} = 'active' then 0 else attempts end,
      next_attempt_at = now(), lease_owner = null, lease_expires_at = null, updated_at = now()
    where id = ${id}
    returning ${sql.unsafe(COLUMNS)}`;
  if (row && status === "active") await wakeDelivery(sql);
  return row ?? null;
}

/**
 * Re-delivers from `fromSeq` (changes with a higher seq go again): the offset moves back, the
 * in-flight message is dropped and the generation changes, so replayed messages get new ids.
 */
export async function replaySubscriber(
  sql: Sql,
  id: string,
  fromSeq: number,
): Promise<SubscriberRow | null> {
  const [row] = await sql<SubscriberRow[]>`
    update change_subscribers set acked_seq = greatest(${fromSeq} - 1, 0),
      replay_generation = replay_generation + 1, inflight_seq = null, inflight_id = null,
      inflight_body = null, attempts = 0, next_attempt_at = now(), lease_owner = null,
      lease_expires_at = null, updated_at = now()
    where id = ${id}
    returning ${sql.unsafe(COLUMNS)}`;
  if (row) await wakeDelivery(sql);
  return row ?? null;
}

/** Rotates the signing secret; the old one keeps being used as well until `overlapMs` passes. */
export async function rotateSubscriberSecret(
  sql: Sql,
  id: string,
  secret: string,
  overlapMs: number,
): Promise<boolean> {
  const rows = await sql`
    update change_subscribers set previous_secret = secret, secret = ${secret},
      previous_expires_at = now() + make_interval(secs => ${overlapMs / 1000}), updated_at = now()
    where id = ${id} returning id`;
  return rows.length === 1;
}

/** Claims up to `limit` active subscribers that are due and not leased elsewhere. */
export async function claimDueSubscribers(
  sql: Sql,
  options: { limit: number; leaseMs: number; owner: string; skip: readonly string[] },
): Promise<ClaimedSubscriber[]> {
  if (options.limit <= 0) return [];
  const rows = await sql<(ClaimedSubscriber & { lease_owner: string })[]>`
    update change_subscribers s set lease_owner = ${options.owner},
      lease_expires_at = now() + make_interval(secs => ${options.leaseMs / 1000})
    where s.id in (
      select id from change_subscribers
      where status = 'active' and next_attempt_at <= now()
        and (lease_expires_at is null or lease_expires_at < now())
        and not (id = any(${options.skip as string[]}::uuid[]))
      order by next_attempt_at
      limit ${options.limit}
      for update skip locked
    )
    returning ${sql.unsafe(COLUMNS)}, lease_owner, secret, previous_secret, previous_expires_at,
      replay_generation, inflight_seq::float8 as inflight_seq, inflight_id, inflight_body`;
  return rows.map((row) => ({ ...row, leaseOwner: row.lease_owner }));
}

/** Fixes the next message before its first attempt; false when the lease was lost. */
export async function storeInflight(
  sql: Sql,
  subscriber: { id: string; leaseOwner: string },
  message: { seq: number; id: string; body: string },
): Promise<boolean> {
  const rows = await sql`
    update change_subscribers set inflight_seq = ${message.seq}, inflight_id = ${message.id},
      inflight_body = ${message.body}, updated_at = now()
    where id = ${subscriber.id} and lease_owner = ${subscriber.leaseOwner} returning id`;
  return rows.length === 1;
}

/**
 * Acknowledges through `seq` (the delivered message, or changes the filter skipped), fixes the
 * next message if given (one round trip per delivery) and extends the lease; false when the
 * lease was lost (another replica delivers now).
 */
export async function ackThrough(
  sql: Sql,
  subscriber: { id: string; leaseOwner: string },
  seq: number,
  options: {
    delivered: boolean;
    leaseMs: number;
    next?: { seq: number; id: string; body: string } | null;
  },
): Promise<boolean> {
  const next = options.next ?? null;
  const rows = await sql`
    update change_subscribers set acked_seq = greatest(acked_seq, ${seq}),
      inflight_seq = ${next?.seq ?? null}, inflight_id = ${next?.id ?? null},
      inflight_body = ${next?.body ?? null}, attempts = 0, failing_since = null,
      delivered_total = delivered_total + case when ${options.delivered} then 1 else 0 end,
      lease_expires_at = now() + make_interval(secs => ${options.leaseMs / 1000}),
      updated_at = now()
    where id = ${subscriber.id} and lease_owner = ${subscriber.leaseOwner} returning id`;
  return rows.length === 1;
}

/**
 * Records a failed attempt: retry after `delayMs`, or pause when it has been failing longer
 * than `maxFailingMs`. Releases the lease. Returns whether it was paused.
 */
export async function recordDeliveryFailure(
  sql: Sql,
  subscriber: { id: string; leaseOwner: string },
  failure: { error: Record<string, unknown>; delayMs: number; maxFailingMs: number },
): Promise<{ paused: boolean } | null> {
  const [row] = await sql<{ paused: boolean }[]>`
    update change_subscribers set attempts = attempts + 1,
      failing_since = coalesce(failing_since, now()),
      last_error = ${sql.json(failure.error as never)},
      next_attempt_at = now() + make_interval(secs => ${failure.delayMs / 1000}),
      status = case when coalesce(failing_since, now())
        < now() - make_interval(secs => ${failure.maxFailingMs / 1000}) then 'paused'
        else status end,
      paused_reason = case when coalesce(failing_since, now())
        < now() - make_interval(secs => ${failure.maxFailingMs / 1000})
        then 'failing longer than SUBSCRIBER_MAX_FAILING' else paused_reason end,
      lease_owner = null, lease_expires_at = null, updated_at = now()
    where id = ${subscriber.id} and lease_owner = ${subscriber.leaseOwner}
    returning status = 'paused' as paused`;
  return row ?? null;
}

/** Gives the lease back (nothing left to deliver, or shutdown). */
export async function releaseSubscriber(
  sql: Sql,
  subscriber: { id: string; leaseOwner: string },
): Promise<void> {
  await sql`
    update change_subscribers set lease_owner = null, lease_expires_at = null
    where id = ${subscriber.id} and lease_owner = ${subscriber.leaseOwner}`;
}

/** The lowest offset of an active subscriber (retention keeps what it has not acked). */
export async function lowestActiveOffset(sql: Sql): Promise<number | null> {
  const [row] = await sql<{ n: number | null }[]>`
    select min(acked_seq)::float8 as n from change_subscribers where status = 'active'`;
  return row.n;
}

/** Per subscriber: seq lag behind the head, and the age of its oldest unacked change. */
export async function subscriberLag(
  sql: Sql,
): Promise<{ id: string; status: string; lag: number; lag_seconds: number }[]> {
  return await sql<{ id: string; status: string; lag: number; lag_seconds: number }[]>`
    select s.id, s.status,
      greatest((select last_seq from change_feed_state) - s.acked_seq, 0)::float8 as lag,
      coalesce(extract(epoch from now() - (
        select f.committed_at from change_feed f
        where f.seq = s.acked_seq + 1)), 0)::float8 as lag_seconds
    from change_subscribers s`;
}

/** Every stored signing secret (for `rotate-keys`): current and previous, by subscriber. */
export async function listStoredSubscriberSecrets(
  sql: Sql,
): Promise<{ id: string; column: "secret" | "previous_secret"; value: string }[]> {
  const rows = await sql<{ id: string; secret: string; previous_secret: string | null }[]>`
    select id, secret, previous_secret from change_subscribers order by id`;
  return rows.flatMap((row) => [
    { id: row.id, column: "secret" as const, value: row.secret },
    ...(row.previous_secret === null
      ? []
      : [{ id: row.id, column: "previous_secret" as const, value: row.previous_secret }]),
  ]);
}

/** Swaps one stored signing secret only if it is still `expected` (a rotation may have won). */
export async function replaceStoredSubscriberSecret(
  sql: Sql,
  input: {
    id: string;
    column: "secret" | "previous_secret";
    expected: string;
    replacement: string;
  },
): Promise<boolean> {
  const rows = input.column === "secret"
    ? await sql`update change_subscribers set secret = ${input.replacement}
        where id = ${input.id} and secret = ${input.expected} returning id`
    : await sql`update change_subscribers set previous_secret = ${input.replacement}
        where id = ${input.id} and previous_secret = ${input.expected} returning id`;
  return rows.length === 1;
}
