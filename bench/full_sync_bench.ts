/**
 * @module Full sync of one connection (10k and 100k ~1 KB events from the fake, pages of the
 * provider maximum) beside the bulk-upsert ceiling, with the daemon's peak RSS; the large size
 * also runs on a second daemon with the V8 heap flags the README recommends.
 */
import type { Sql } from "../src/storage/client.ts";
import { insertConnection } from "../src/storage/connections.ts";
import { countEvents } from "../src/storage/calendar_events.ts";
import { type FakeGoogle, startFakeGoogle } from "../testkit/fake_google.ts";
import { type BenchDaemon, startBenchDaemon, stopDaemons } from "./bench_daemon.ts";
import { coresBusySince, markMachine } from "./cpu_usage.ts";
import { BULK_METHODS, type BulkMethod, bulkUpsert, prepareRows } from "./bulk_upsert.ts";
import { insertBenchProvider, retireProvider } from "./fixtures.ts";
import type { BenchContext, Row } from "./report.ts";
import { summarize, type Summary } from "./stats.ts";

/** One calendar size to sync; `key` names its rows in the JSON whatever the size. */
export type FullSyncSize = { key: "small" | "large"; events: number };

/**
 * V8 heap settings that keep a 100k-event full sync's peak RSS low at about the same speed:
 * a small young generation promotes less page garbage, and a (generous) old-space limit makes
 * V8 collect before the heap balloons. Passed as DENO_V8_FLAGS to the second daemon.
 */
export const LEAN_V8_FLAGS = "--max-old-space-size=512,--max-semi-space-size=2";

const GOOGLE_MAX_PAGE = 2_500;
const MB = 1024 * 1024;

type Daemons = { plain: BenchDaemon; lean: BenchDaemon };
type Syncer = { daemon: BenchDaemon; providerId: string };

/** Measures full syncs of each size against the best bulk method. */
export async function benchFullSync(
  ctx: BenchContext,
  db: { url: string; sql: Sql },
  sizes: readonly FullSyncSize[],
): Promise<Row[]> {
  const google = startFakeGoogle({ maxPageSize: GOOGLE_MAX_PAGE });
  google.addRefreshToken("rt-full");
  // Each daemon syncs only its own provider (allowlist by name), so both can run side by side.
  const plainProvider = await insertBenchProvider(db.sql, "full");
  const leanProvider = await insertBenchProvider(db.sql, "full-lean");
  // The ceiling writes under a connection of its own that is never due, so no daemon touches it.
  const [ceiling] = await db.sql<{ id: string }[]>`
    insert into external_calendar_connections
      (provider_id, external_calendar_id, refresh_token, sync_needed)
    values (${plainProvider}, 'bulk-ceiling', 'rt-none', false) returning id`;
  const env = (allow: string) => ({
    DATABASE_URL: db.url,
    GOOGLE_API_BASE_URL: google.baseUrl,
    GOOGLE_TOKEN_URL: google.tokenUrl,
    SYNC_PROVIDER_ALLOWLIST: allow,
  });
  const started: BenchDaemon[] = [];
  try {
    const daemons: Daemons = {
      plain: await startBenchDaemon(env("bench-full")),
      lean: await startBenchDaemon({ ...env("bench-full-lean"), DENO_V8_FLAGS: LEAN_V8_FLAGS }),
    };
    started.push(daemons.plain, daemons.lean);
    const rows: Row[] = [];
    for (const size of sizes) {
      rows.push(
        ...await benchSize(ctx, db.sql, google, {
          size,
          ceilingConnection: ceiling.id,
          plain: { daemon: daemons.plain, providerId: plainProvider },
          lean: size.key === "large" ? { daemon: daemons.lean, providerId: leanProvider } : null,
        }),
      );
    }
    return rows;
  } finally {
    await stopDaemons(started);
    await google.close();
    await retireProvider(db.sql, plainProvider);
    await retireProvider(db.sql, leanProvider);
  }
}

async function benchSize(
  ctx: BenchContext,
  sql: Sql,
  google: FakeGoogle,
  input: { size: FullSyncSize; ceilingConnection: string; plain: Syncer; lean: Syncer | null },
): Promise<Row[]> {
  const { key, events: size } = input.size;
  const calendar = `full-${size}@group.calendar.google.com`;
  google.seedEvents(calendar, size, { bytesEach: 1_024 });
  const prepared = prepareRows(size, 1_024);
  // One unmeasured run of each path so JIT and caches are warm for the measured ones.
  await syncOnce(sql, input.plain, calendar, size);
  if (input.lean) await syncOnce(sql, input.lean, calendar, size);
  await bulkUpsert(sql, "unnest", input.ceilingConnection, prepared.slice(0, 5_000));
  const bulk: Record<BulkMethod, number[]> = { multi_row: [], unnest: [], copy: [] };
  const plain = { rates: [] as number[], peaks: [] as number[], cores: [] as number[] };
  const lean = { rates: [] as number[], peaks: [] as number[], cores: [] as number[] };
  const bulkCores: number[] = [];
  for (let rep = 0; rep < ctx.reps; rep++) {
    // Rotate the order so no method always runs right after a checkpoint or a sync.
    for (let i = 0; i < BULK_METHODS.length; i++) {
      const method = BULK_METHODS[(i + rep) % BULK_METHODS.length];
      await freshTable(sql);
      const mark = markMachine();
      const t0 = performance.now();
      const written = await bulkUpsert(sql, method, input.ceilingConnection, prepared);
      if (written !== size) throw new Error(`Bulk ${method} wrote ${written} of ${size} rows`);
      bulk[method].push(size / ((performance.now() - t0) / 1000));
      bulkCores.push(coresBusySince(mark) ?? Number.NaN);
    }
    for (const [syncer, into] of [[input.plain, plain], [input.lean, lean]] as const) {
      if (!syncer) continue;
      const mark = markMachine();
      const run = await syncOnce(sql, syncer, calendar, size);
      into.cores.push(coresBusySince(mark) ?? Number.NaN);
      into.rates.push(run.eventsPerSecond);
      if (run.peakRssBytes !== null) into.peaks.push(run.peakRssBytes / MB);
    }
    ctx.log(
      `full sync ${size}: ${Math.round(plain.rates[rep])} events/s, peak RSS ` +
        `${Math.round(plain.peaks[rep] ?? Number.NaN)} MB` +
        (input.lean
          ? ` (lean V8: ${Math.round(lean.rates[rep])}/s, ${Math.round(lean.peaks[rep])} MB)`
          : "") +
        `; bulk ${BULK_METHODS.map((m) => `${m} ${Math.round(bulk[m][rep])}/s`).join(", ")}`,
    );
  }
  const best = BULK_METHODS.map((method) => ({ method, summary: summarize(bulk[method]) }))
    .sort((a, b) => b.summary.median - a.summary.median)[0];
  const label = size >= 1000 ? `${size / 1000}k` : String(size);
  const perMethod = BULK_METHODS.map((m) =>
    `${m} ${Math.round(summarize(bulk[m]).median).toLocaleString("en-US")}/s`
  ).join(", ");
  const peak = (peaks: number[]): Summary | null => peaks.length > 0 ? summarize(peaks) : null;
  const rows: Row[] = [
    {
      id: `full_sync_${key}_events_per_s`,
      metric: `Full sync, ${label} events`,
      unit: "events/s",
      better: "higher",
      calsync: summarize(plain.rates),
      ceiling: best.summary,
      notes: `ceiling: best bulk upsert from memory (${best.method}); ${perMethod}; cores ` +
        `busy: sync ${median(plain.cores)}, bulk ${median(bulkCores)} of ` +
        `${navigator.hardwareConcurrency}; pages of ` +
        `${GOOGLE_MAX_PAGE} from the fake on loopback, HTTP + parsing included; target >= 50%`,
    },
    {
      id: `full_sync_${key}_peak_rss_mb`,
      metric: `Full sync, ${label} events: daemon peak RSS`,
      unit: "MB",
      better: "lower",
      calsync: peak(plain.peaks),
      ceiling: null,
      notes: "VmHWM of the daemon, reset before each run; default V8 settings" +
        (key === "large" ? "; target < 200 MB" : ""),
    },
  ];
  if (input.lean) {
    rows.push({
      id: `full_sync_${key}_peak_rss_mb_lean_v8`,
      metric: `Full sync, ${label} events: peak RSS, lean V8 flags`,
      unit: "MB",
      better: "lower",
      calsync: peak(lean.peaks),
      ceiling: null,
      notes: `DENO_V8_FLAGS=${LEAN_V8_FLAGS}; the same sync at ` +
        `${Math.round(summarize(lean.rates).median).toLocaleString("en-US")} events/s`,
    });
  }
  return rows;
}

function median(values: number[]): string {
  const known = values.filter(Number.isFinite);
  return known.length > 0 ? summarize(known).median.toFixed(1) : "?";
}

async function freshTable(sql: Sql): Promise<void> {
  // Every run writes into an empty table, so a sync and the ceiling do the same work.
  await sql`truncate external_calendar_events`;
  await sql`checkpoint`;
}

/** Syncs a fresh connection of `calendar` through a daemon and times it end to end. */
async function syncOnce(
  sql: Sql,
  syncer: Syncer,
  calendar: string,
  size: number,
): Promise<{ eventsPerSecond: number; peakRssBytes: number | null }> {
  await sql`
    delete from external_calendar_connections
    where provider_id = ${syncer.providerId} and external_calendar_id = ${calendar}`;
  await freshTable(sql);
  syncer.daemon.resetPeakRss();
  const started = performance.now();
  // insertConnection NOTIFYs: the daemon claims at once and runs a full sync.
  const { id } = await insertConnection(sql, {
    providerId: syncer.providerId,
    externalCalendarId: calendar,
    refreshToken: "rt-full",
    accountLabel: null,
  });
  const timeoutMs = 120_000 + size * 2;
  for (;;) {
    const [row] = await sql<{ done: boolean; error_count: number; last_error: unknown }[]>`
      select not sync_needed and last_success_at is not null as done, error_count, last_error
      from external_calendar_connections where id = ${id}`;
    if (row.done) break;
    if (row.error_count > 0) throw new Error(`Full sync failed: ${JSON.stringify(row.last_error)}`);
    if (performance.now() - started > timeoutMs) {
      throw new Error(`Full sync of ${size} events did not finish within ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const seconds = (performance.now() - started) / 1000;
  const mirrored = await countEvents(sql, id);
  if (mirrored !== size) throw new Error(`Full sync mirrored ${mirrored} of ${size} events`);
  return { eventsPerSecond: size / seconds, peakRssBytes: syncer.daemon.peakRssBytes() };
}
