/**
 * @module SQL for `external_calendar_events` (one row per occurrence the calendar shows) and
 * `external_calendar_series` (series masters): bulk upserts, deletes, sweeps, range reads.
 */
import type { MirroredEvent, MirroredSeries } from "../core/mirrored_event.ts";
import type { Sql, Tx } from "./client.ts";

/** A row of `external_calendar_events` as read back. */
export type EventRow = {
  external_event_id: string;
  etag: string | null;
  status: string;
  occurrence_kind: string | null;
  series_id: string | null;
  original_starts_at: Date | null;
  original_start_date: string | null;
  title: string | null;
  starts_at: Date | null;
  ends_at: Date | null;
  start_date: string | null;
  end_date: string | null;
  all_day: boolean;
  time_zone: string | null;
  location: string | null;
  organizer_email: string | null;
  response_status: string | null;
  busy_status: string | null;
  blocks_time: boolean;
  visibility: string | null;
  event_type: string | null;
  web_link: string | null;
  ical_uid: string | null;
  provider_updated_at: Date | null;
  raw: unknown;
};

const DATE = /^\d{4}-\d{2}-\d{2}$/;

/**
 * Upserts events in one statement. Arrays go in as text[] and are cast on the server: one round
 * trip per chunk, and postgres.js would otherwise store a JSON string for jsonb parameters. The
 * raw events go in as one JSON array text: serialised once instead of once per event and again
 * as an array literal, which roughly halves a full sync's peak heap (`deno task bench`).
 */
export async function upsertEvents(
  tx: Tx | Sql,
  connectionId: string,
  events: readonly MirroredEvent[],
  generation: number,
): Promise<number> {
  if (events.length === 0) return 0;
  // A provider may repeat an event within one batch (Graph delta does); the last copy wins,
  // and ON CONFLICT cannot touch the same row twice in one statement.
  const latest = new Map<string, MirroredEvent>();
  for (const event of events) latest.set(event.externalEventId, event);
  const rows = [...latest.values()];
  const col = (pick: (r: MirroredEvent) => string | null) => rows.map(pick);
  const originalDate = (r: MirroredEvent) =>
    r.originalStart !== null && DATE.test(r.originalStart) ? r.originalStart : null;
  const originalInstant = (r: MirroredEvent) =>
    r.originalStart !== null && !DATE.test(r.originalStart) ? r.originalStart : null;
  const result = await tx`
    insert into external_calendar_events as e (
      connection_id, external_event_id, etag, status, occurrence_kind, series_id,
      original_starts_at, original_start_date, title, starts_at, ends_at, start_date, end_date,
      all_day, time_zone, location, organizer_email, response_status, busy_status, blocks_time,
      visibility, event_type, web_link, ical_uid, provider_updated_at, raw, sync_generation,
      synced_at)
    select ${connectionId}::uuid, t.id, t.etag, t.status, t.kind, t.series_id,
      t.original_at::timestamptz, t.original_date::date, t.title, t.starts_at::timestamptz,
      t.ends_at::timestamptz, t.start_date::date, t.end_date::date, t.all_day::boolean,
      t.time_zone, t.location, t.organizer, t.response, t.busy, t.blocks::boolean, t.visibility,
      t.event_type, t.web_link, t.ical_uid, t.updated::timestamptz, t.raw, ${generation}, now()
    from rows from (
      unnest(${col((r) => r.externalEventId)}::text[]),
      unnest(${col((r) => r.etag)}::text[]),
      unnest(${col((r) => r.status)}::text[]),
      unnest(${col((r) => r.kind)}::text[]),
      unnest(${col((r) => r.seriesId)}::text[]),
      unnest(${col(originalInstant)}::text[]),
      unnest(${col(originalDate)}::text[]),
      unnest(${col((r) => r.title)}::text[]),
      unnest(${col((r) => r.startsAt)}::text[]),
      unnest(${col((r) => r.endsAt)}::text[]),
      unnest(${col((r) => r.startDate)}::text[]),
      unnest(${col((r) => r.endDate)}::text[]),
      unnest(${col((r) => String(r.allDay))}::text[]),
      unnest(${col((r) => r.timeZone)}::text[]),
      unnest(${col((r) => r.location)}::text[]),
      unnest(${col((r) => r.organizerEmail)}::text[]),
      unnest(${col((r) => r.responseStatus)}::text[]),
      unnest(${col((r) => r.busyStatus)}::text[]),
      unnest(${col((r) => String(r.blocksTime))}::text[]),
      unnest(${col((r) => r.visibility)}::text[]),
      unnest(${col((r) => r.eventType)}::text[]),
      unnest(${col((r) => r.webLink)}::text[]),
      unnest(${col((r) => r.iCalUid)}::text[]),
      unnest(${col((r) => r.providerUpdatedAt)}::text[]),
      jsonb_array_elements(${JSON.stringify(rows.map((r) => r.raw))}::text::jsonb)
    ) as t(id, etag, status, kind, series_id, original_at, original_date, title, starts_at,
      ends_at, start_date, end_date, all_day, time_zone, location, organizer, response, busy,
      blocks, visibility, event_type, web_link, ical_uid, updated, raw)
    on conflict (connection_id, external_event_id) do update set
      etag = excluded.etag, status = excluded.status, occurrence_kind = excluded.occurrence_kind,
      series_id = excluded.series_id, original_starts_at = excluded.original_starts_at,
      original_start_date = excluded.original_start_date, title = excluded.title,
      starts_at = excluded.starts_at, ends_at = excluded.ends_at,
      start_date = excluded.start_date, end_date = excluded.end_date, all_day = excluded.all_day,
      time_zone = excluded.time_zone, location = excluded.location,
      organizer_email = excluded.organizer_email, response_status = excluded.response_status,
      busy_status = excluded.busy_status, blocks_time = excluded.blocks_time,
      visibility = excluded.visibility, event_type = excluded.event_type,
      web_link = excluded.web_link, ical_uid = excluded.ical_uid,
      provider_updated_at = excluded.provider_updated_at, raw = excluded.raw,
      sync_generation = excluded.sync_generation, synced_at = excluded.synced_at`;
  return result.count;
}

/** Upserts series masters (last copy of each wins), marked with the round's generation. */
export async function upsertSeries(
  tx: Tx | Sql,
  connectionId: string,
  series: readonly MirroredSeries[],
  generation: number,
): Promise<number> {
  if (series.length === 0) return 0;
  const latest = new Map<string, MirroredSeries>();
  for (const master of series) latest.set(master.seriesId, master);
  const rows = [...latest.values()];
  const result = await tx`
    insert into external_calendar_series (connection_id, series_id, etag, raw, sync_generation,
      synced_at)
    select ${connectionId}::uuid, t.id, t.etag, t.raw, ${generation}, now()
    from rows from (
      unnest(${rows.map((r) => r.seriesId)}::text[]),
      unnest(${rows.map((r) => r.etag)}::text[]),
      jsonb_array_elements(${JSON.stringify(rows.map((r) => r.raw))}::text::jsonb)
    ) as t(id, etag, raw)
    on conflict (connection_id, series_id) do update set etag = excluded.etag,
      raw = excluded.raw, sync_generation = excluded.sync_generation,
      synced_at = excluded.synced_at`;
  return result.count;
}

/**
 * Deletes the given events of a connection; unknown ids are ignored (deletes are idempotent).
 * An id that names a series also removes its occurrences and its master: Google reports a
 * deleted series by its id and only some of its cancelled instances.
 */
export async function deleteEvents(
  tx: Tx | Sql,
  connectionId: string,
  externalEventIds: readonly string[],
): Promise<number> {
  if (externalEventIds.length === 0) return 0;
  const ids = externalEventIds as string[];
  const [row] = await tx<{ n: number }[]>`
    with series as (
      delete from external_calendar_series
      where connection_id = ${connectionId} and series_id = any(${ids}::text[])
      returning series_id
    ), events as (
      delete from external_calendar_events
      where connection_id = ${connectionId}
        and (external_event_id = any(${ids}::text[])
          or (series_id is not null and series_id = any(${ids}::text[])))
      returning 1
    )
    select (select count(*) from events)::int as n, (select count(*) from series) as s`;
  return row.n;
}

/** Ends a full round: removes every row and master the round of `generation` did not see. */
export async function sweepEvents(
  tx: Tx | Sql,
  connectionId: string,
  generation: number,
): Promise<number> {
  await tx`
    delete from external_calendar_series
    where connection_id = ${connectionId} and sync_generation <> ${generation}`;
  const result = await tx`
    delete from external_calendar_events
    where connection_id = ${connectionId} and sync_generation <> ${generation}`;
  return result.count;
}

const COLUMNS = `external_event_id, etag, status, occurrence_kind, series_id, original_starts_at,
  original_start_date::text, title, starts_at, ends_at, start_date::text, end_date::text,
  all_day, time_zone, location, organizer_email, response_status, busy_status, blocks_time,
  visibility, event_type, web_link, ical_uid, provider_updated_at, raw`;

/** Lists a connection's mirrored events ordered by external id (tests and drills compare them). */
export async function listEvents(sql: Sql, connectionId: string): Promise<EventRow[]> {
  return await sql<EventRow[]>`
    select ${sql.unsafe(COLUMNS)}
    from external_calendar_events where connection_id = ${connectionId}
    order by external_event_id`;
}

/**
 * The occurrences of a connection that overlap [from, to): timed events by instant, all-day
 * events by date as seen in `zone` (an all-day event is on a date everywhere). Ordered by start,
 * all-day events first on their date. Served by the time and date indexes.
 */
export async function listOccurrences(
  sql: Sql,
  connectionId: string,
  range: { from: string; to: string; zone: string },
): Promise<EventRow[]> {
  const { from, to, zone } = range;
  return await sql<EventRow[]>`
    select * from (
      select ${sql.unsafe(COLUMNS)}, starts_at as sort_at
      from external_calendar_events
      where connection_id = ${connectionId} and start_date is null
        and starts_at < ${to}::timestamptz and ends_at > ${from}::timestamptz
      union all
      select ${sql.unsafe(COLUMNS)}, (start_date::timestamp at time zone ${zone}) as sort_at
      from external_calendar_events
      where connection_id = ${connectionId} and start_date is not null
        and start_date < (${to}::timestamptz at time zone ${zone})::date
          + (case when (${to}::timestamptz at time zone ${zone})::time = '00:00' then 0 else 1 end)
        and end_date > (${from}::timestamptz at time zone ${zone})::date
    ) o order by sort_at, all_day desc, external_event_id`;
}

/** Lists a connection's series masters by id. */
export async function listSeries(
  sql: Sql,
  connectionId: string,
): Promise<{ series_id: string; etag: string | null; raw: unknown }[]> {
  return await sql<{ series_id: string; etag: string | null; raw: unknown }[]>`
    select series_id, etag, raw from external_calendar_series
    where connection_id = ${connectionId} order by series_id`;
}

/** Counts a connection's mirrored events. */
export async function countEvents(sql: Sql, connectionId: string): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    select count(*)::int as n from external_calendar_events where connection_id = ${connectionId}`;
  return row.n;
}

/** Counts a connection's mirrored events inside a transaction (the deletion guard's base). */
export async function countConnectionEvents(tx: Tx | Sql, connectionId: string): Promise<number> {
  const [row] = await tx<{ n: number }[]>`
    select count(*)::int as n from external_calendar_events where connection_id = ${connectionId}`;
  return row.n;
}

/** Which of the given ids are mirrored: what deleting them would actually remove. */
export async function existingEventIds(
  tx: Tx | Sql,
  connectionId: string,
  externalEventIds: readonly string[],
): Promise<{ ids: string[]; rows: number }> {
  if (externalEventIds.length === 0) return { ids: [], rows: 0 };
  // A deleted series id (Google) stands for its master and every occurrence of it.
  const [row] = await tx<{ ids: string[]; rows: number }[]>`
    with wanted as (select unnest(${externalEventIds as string[]}::text[]) as id),
    hits as (
      select w.id, e.external_event_id from wanted w
      join external_calendar_events e on e.connection_id = ${connectionId}
        and (e.external_event_id = w.id or e.series_id = w.id)
    ),
    masters as (
      select w.id from wanted w
      join external_calendar_series s on s.connection_id = ${connectionId} and s.series_id = w.id
    )
    select
      coalesce((select array_agg(distinct id) from (
        select id from hits union select id from masters) ids), '{}') as ids,
      (select count(distinct external_event_id) from hits)::int as rows`;
  return row;
}

/** What the sweep of a full sync of `generation` would remove, and how many rows it saw. */
export async function sweepCandidates(
  tx: Tx | Sql,
  connectionId: string,
  generation: number,
): Promise<{ unseen: { id: string; endsAt: Date | null }[]; seen: number }> {
  const rows = await tx<{ external_event_id: string; ends_at: Date | null; seen: boolean }[]>`
    select external_event_id, ends_at, sync_generation = ${generation} as seen
    from external_calendar_events where connection_id = ${connectionId}`;
  const unseen = rows.filter((row) => !row.seen)
    .map((row) => ({ id: row.external_event_id, endsAt: row.ends_at }));
  return { unseen, seen: rows.length - unseen.length };
}

/**
 * Compares listed events with the mirror before they are upserted (reconciliation): ids not
 * mirrored are `missing`, ids whose stored fields differ are `changed`. Values are cast exactly
 * as `upsertEvents` casts them, so an unchanged event never looks changed.
 */
export async function findDrift(
  tx: Tx | Sql,
  connectionId: string,
  events: readonly MirroredEvent[],
): Promise<{ missing: string[]; changed: string[] }> {
  if (events.length === 0) return { missing: [], changed: [] };
  const latest = new Map<string, MirroredEvent>();
  for (const event of events) latest.set(event.externalEventId, event);
  const rows = [...latest.values()];
  const drift = await tx<{ id: string; missing: boolean }[]>`
    select t.id, e.external_event_id is null as missing
    from rows from (
      unnest(${rows.map((r) => r.externalEventId)}::text[]),
      unnest(${rows.map((r) => r.etag)}::text[]),
      unnest(${rows.map((r) => r.status)}::text[]),
      unnest(${rows.map((r) => r.title)}::text[]),
      unnest(${rows.map((r) => r.startsAt)}::text[]),
      unnest(${rows.map((r) => r.endsAt)}::text[])
    ) as t(id, etag, status, title, starts_at, ends_at)
    left join external_calendar_events e
      on e.connection_id = ${connectionId} and e.external_event_id = t.id
    where e.external_event_id is null
      or (e.etag, e.status, e.title, e.starts_at, e.ends_at) is distinct from
        (t.etag, t.status, t.title, t.starts_at::timestamptz, t.ends_at::timestamptz)`;
  return {
    missing: drift.filter((row) => row.missing).map((row) => row.id),
    changed: drift.filter((row) => !row.missing).map((row) => row.id),
  };
}
