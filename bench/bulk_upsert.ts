/**
 * @module The bulk-upsert ceiling: the rows a full sync writes, upserted straight from memory
 * (no HTTP, no JSON parsing) by each bulk method postgres.js offers, one transaction per batch.
 */
import { once } from "node:events";
import type { Sql, Tx } from "../src/storage/client.ts";
import type { MirroredEvent } from "../src/core/mirrored_event.ts";

/** A bulk method under test. */
export type BulkMethod = "multi_row" | "unnest" | "copy";

/** Every method, in the order they are measured. */
export const BULK_METHODS: readonly BulkMethod[] = ["multi_row", "unnest", "copy"];

/** One event row ready to write; `raw` is already JSON text, as the ceiling skips serialising. */
export type PreparedRow =
  & Pick<
    MirroredEvent,
    "externalEventId" | "etag" | "status" | "title" | "startsAt" | "endsAt" | "allDay"
  >
  & { providerUpdatedAt: string | null; raw: string };

// Batch sizes that measured best for each method on our machines (see issue 6).
const BATCH: Record<BulkMethod, number> = { multi_row: 1_000, unnest: 2_500, copy: 10_000 };
const COLUMNS = 9;

// A row's COLUMNS values, in the order the multi-row insert and COPY both write them.
function columnValues(row: PreparedRow): (string | null)[] {
  return [
    row.externalEventId,
    row.etag,
    row.status,
    row.title,
    row.startsAt,
    row.endsAt,
    String(row.allDay),
    row.providerUpdatedAt,
    row.raw,
  ];
}

/** Builds `count` rows whose raw JSON is about `bytesEach` bytes, shaped like Google events. */
export function prepareRows(count: number, bytesEach = 1_024): PreparedRow[] {
  const rows: PreparedRow[] = [];
  const base = Date.UTC(2026, 0, 1);
  let padding = "";
  for (let i = 0; i < count; i++) {
    const id = `bulk${i.toString(32).padStart(10, "0")}`;
    const start = new Date(base + i * 1_800_000).toISOString();
    const end = new Date(base + i * 1_800_000 + 1_800_000).toISOString();
    const event = {
      kind: "calendar#event",
      etag: `"${3_000_000_000_000 + i}"`,
      id,
      status: "confirmed",
      summary: `Bulk event ${i}`,
      description: padding,
      start: { dateTime: start, timeZone: "UTC" },
      end: { dateTime: end, timeZone: "UTC" },
    };
    if (i === 0) {
      padding = "x".repeat(Math.max(0, bytesEach - JSON.stringify(event).length));
      event.description = padding;
    }
    rows.push({
      externalEventId: id,
      etag: event.etag,
      status: "confirmed",
      title: event.summary,
      startsAt: start,
      endsAt: end,
      allDay: false,
      providerUpdatedAt: start,
      raw: JSON.stringify(event),
    });
  }
  return rows;
}

/** Upserts `rows` for one connection with `method`; resolves to the rows written. */
export async function bulkUpsert(
  sql: Sql,
  method: BulkMethod,
  connectionId: string,
  rows: readonly PreparedRow[],
): Promise<number> {
  let written = 0;
  const size = BATCH[method];
  for (let at = 0; at < rows.length; at += size) {
    const batch = rows.slice(at, at + size);
    written += await sql.begin((tx) => {
      if (method === "multi_row") return multiRow(tx, connectionId, batch);
      if (method === "copy") return copyThenMerge(tx, connectionId, batch);
      return unnestArrays(tx, connectionId, batch);
    }) as number;
  }
  return written;
}

const UPSERT_SET = `on conflict (connection_id, external_event_id) do update set
  etag = excluded.etag, status = excluded.status, title = excluded.title,
  starts_at = excluded.starts_at, ends_at = excluded.ends_at, all_day = excluded.all_day,
  provider_updated_at = excluded.provider_updated_at, raw = excluded.raw,
  sync_generation = excluded.sync_generation, synced_at = excluded.synced_at`;

async function multiRow(tx: Tx, connectionId: string, batch: readonly PreparedRow[]) {
  const params: (string | null)[] = [connectionId];
  const tuples: string[] = [];
  for (const row of batch) {
    const n = params.length;
    // Explicit text casts: a JS string bound straight to jsonb would be stored as a JSON string.
    tuples.push(
      `($1::uuid, $${n + 1}::text, $${n + 2}::text, $${n + 3}::text, $${n + 4}::text, ` +
        `$${n + 5}::text::timestamptz, $${n + 6}::text::timestamptz, $${n + 7}::text::boolean, ` +
        `$${n + 8}::text::timestamptz, $${n + 9}::text::jsonb, 1, now())`,
    );
    params.push(...columnValues(row));
  }
  if (params.length - 1 !== batch.length * COLUMNS) throw new Error("Parameter count mismatch");
  const result = await tx.unsafe(
    `insert into external_calendar_events (connection_id, external_event_id, etag, status, title,
       starts_at, ends_at, all_day, provider_updated_at, raw, sync_generation, synced_at)
     values ${tuples.join(", ")} ${UPSERT_SET}`,
    params,
  );
  return result.count;
}

// The statement of `upsertEvents` (src/storage/calendar_events.ts), fed raw JSON text that needs no serialising.
async function unnestArrays(tx: Tx, connectionId: string, batch: readonly PreparedRow[]) {
  const result = await tx`
    insert into external_calendar_events as e (
      connection_id, external_event_id, etag, status, title, starts_at, ends_at, all_day,
      provider_updated_at, raw, sync_generation, synced_at)
    select ${connectionId}::uuid, t.id, t.etag, t.status, t.title, t.starts_at::timestamptz,
      t.ends_at::timestamptz, t.all_day::boolean, t.updated::timestamptz, t.raw::jsonb, 1, now()
    from unnest(
      ${batch.map((r) => r.externalEventId)}::text[],
      ${batch.map((r) => r.etag)}::text[],
      ${batch.map((r) => r.status)}::text[],
      ${batch.map((r) => r.title)}::text[],
      ${batch.map((r) => r.startsAt)}::text[],
      ${batch.map((r) => r.endsAt)}::text[],
      ${batch.map((r) => String(r.allDay))}::text[],
      ${batch.map((r) => r.providerUpdatedAt)}::text[],
      ${batch.map((r) => r.raw)}::text[]
    ) as t(id, etag, status, title, starts_at, ends_at, all_day, updated, raw)
    ${tx.unsafe(UPSERT_SET)}`;
  return result.count;
}

/** COPY text format: backslash, tab, newline and carriage return are escaped; null is \N. */
function copyField(value: string | null): string {
  if (value === null) return "\\N";
  return value.replace(
    /[\\\t\n\r]/g,
    (c) => c === "\\" ? "\\\\" : c === "\t" ? "\\t" : c === "\n" ? "\\n" : "\\r",
  );
}

async function copyThenMerge(tx: Tx, connectionId: string, batch: readonly PreparedRow[]) {
  await tx`
    create temp table bench_staging (
      external_event_id text, etag text, status text, title text, starts_at timestamptz,
      ends_at timestamptz, all_day boolean, provider_updated_at timestamptz, raw jsonb
    ) on commit drop`;
  const stream = await tx`
    copy bench_staging (external_event_id, etag, status, title, starts_at, ends_at, all_day,
      provider_updated_at, raw) from stdin`.writable();
  let chunk = "";
  for (const row of batch) {
    chunk += columnValues(row).map(copyField).join("\t") + "\n";
    // Writing ~256 KB at a time keeps memory flat and honours the stream's backpressure.
    if (chunk.length >= 262_144) {
      if (!stream.write(chunk)) await once(stream, "drain");
      chunk = "";
    }
  }
  if (chunk) stream.write(chunk);
  stream.end();
  await once(stream, "finish");
  const result = await tx`
    insert into external_calendar_events as e (connection_id, external_event_id, etag, status,
      title, starts_at, ends_at, all_day, provider_updated_at, raw, sync_generation, synced_at)
    select ${connectionId}::uuid, external_event_id, etag, status, title, starts_at, ends_at,
      all_day, provider_updated_at, raw, 1, now()
    from bench_staging
    ${tx.unsafe(UPSERT_SET)}`;
  return result.count;
}
