/**
 * @module Webhook ingestion: distinct Google deliveries over many connections at 32 concurrent
 * clients against the daemon, beside (a) pgbench running the same write and (b) a bare
 * `Deno.serve` under the same load generator.
 */
import type { Sql } from "../src/storage/client.ts";
import { startFakeGoogle } from "../testkit/fake_google.ts";
import { startBareServer } from "./bare_server.ts";
import { startBenchDaemon, stopDaemons } from "./bench_daemon.ts";
import { coresBusySince, markMachine, processCpuSeconds } from "./cpu_usage.ts";
import {
  insertBenchProvider,
  retireProvider,
  seedGoogleChannels,
  seedIdleConnections,
} from "./fixtures.ts";
import { hasWrk, type LoadChannel, type LoadResult, runLoad } from "./load_generator.ts";
import { findPgbench, runPgbench, webhookWriteScript, type WebhookWriteShape } from "./pgbench.ts";
import type { BenchContext, Row } from "./report.ts";
import { summarize } from "./stats.ts";
import { scrapeMetrics, sumSamples } from "../testkit/prometheus_text.ts";

/** Concurrency of every webhook load: the 32 clients. */
export const WEBHOOK_CLIENTS = 32;

type Kind = "calsync" | "bare" | "cte" | "four";

/** Figures of one kind of run, one entry per repetition. */
type Series = { rate: number[]; p50: number[]; p99: number[]; share2xx: number[]; cores: number[] };

/** Measures ingestion and both ceilings; `seconds` per run, `connections` spread the load. */
export async function benchWebhookIngestion(
  ctx: BenchContext,
  db: { url: string; sql: Sql },
  input: { connections: number; seconds: number },
): Promise<Row[]> {
  const pgbench = await findPgbench();
  if (!pgbench) throw new Error("pgbench not found (Debian: apt-get install postgresql-client)");
  const useWrk = ctx.denoLoad ? false : await hasWrk();
  const google = startFakeGoogle();
  const providerId = await insertBenchProvider(db.sql, "hooks");
  const connections = await seedIdleConnections(db.sql, {
    providerId,
    count: input.connections,
    calendarPrefix: "hook-",
    refreshToken: "rt-hooks",
    cursorFor: () => null,
  });
  const prefix = `bch-${crypto.randomUUID().slice(0, 6)}-`;
  const channels: LoadChannel[] = (await seedGoogleChannels(db.sql, connections, prefix)).map((
    c,
  ) => ({
    channelId: c.channelId,
    token: c.token,
    resourceId: c.resourceId,
    uri: `https://www.googleapis.com/calendar/v3/calendars/${c.calendarId}/events?alt=json`,
  }));
  // Only Microsoft may sync: the scheduler leaves these Google connections alone, so the runs
  // measure ingestion, exactly the write pgbench runs, and not syncs competing for the CPU.
  const daemon = await startBenchDaemon({
    DATABASE_URL: db.url,
    GOOGLE_API_BASE_URL: google.baseUrl,
    GOOGLE_TOKEN_URL: google.tokenUrl,
    SYNC_PROVIDER_ALLOWLIST: "microsoft",
  }, { cpuProfDir: ctx.cpuProfDir });
  const bare = await startBareServer();
  const series: Record<Kind, Series> = {
    calsync: emptySeries(),
    bare: emptySeries(),
    cte: emptySeries(),
    four: emptySeries(),
  };
  const cpuPerDelivery: number[] = [];
  const perStatement: number[] = [];
  let failedTx = 0;
  let tool: LoadResult["tool"] = useWrk ? "wrk" : "deno";
  let run = 0;
  const load = async (url: string, seconds: number) => {
    const result = await runLoad(
      { url, channels, concurrency: WEBHOOK_CLIENTS, seconds, run: ++run },
      useWrk,
    );
    tool = result.tool;
    return result;
  };
  // The two ceilings: pgbench running the same writes as one CTE, or as four statements.
  const pgbenchWrites = async (shape: WebhookWriteShape, into: Series) => {
    const script = webhookWriteScript(shape, prefix, channels.length);
    const r = await runPgbench(pgbench, {
      url: db.url,
      script,
      clients: WEBHOOK_CLIENTS,
      seconds: input.seconds,
    });
    failedTx += r.failed;
    record(into, r.tps, null);
  };
  const measure: Record<Kind, () => Promise<void>> = {
    calsync: async () => {
      const cpu = processCpuSeconds(daemon.process.pid);
      const statements = await recordingStatements(daemon.url);
      const r = await load(`${daemon.url}/webhooks/google`, input.seconds);
      const used = processCpuSeconds(daemon.process.pid);
      if (cpu !== null && used !== null) cpuPerDelivery.push(((used - cpu) / r.requests) * 1e6);
      const after = await recordingStatements(daemon.url);
      perStatement.push((after.items - statements.items) / (after.count - statements.count));
      record(series.calsync, r.requestsPerSecond, r);
    },
    bare: async () => {
      const r = await load(bare.url, input.seconds);
      record(series.bare, r.requestsPerSecond, r);
    },
    cte: () => pgbenchWrites("cte", series.cte),
    four: () => pgbenchWrites("four_statements", series.four),
  };
  try {
    // Warm-up: JIT, the channel cache, and pool connections, none of it measured.
    await load(`${daemon.url}/webhooks/google`, 1);
    await load(bare.url, 1);
    const kinds = Object.keys(measure) as Kind[];
    for (let rep = 0; rep < ctx.reps; rep++) {
      // Rotate the order so no run always follows the same one.
      for (let i = 0; i < kinds.length; i++) {
        await freshWebhookTables(db.sql, providerId);
        const mark = markMachine();
        const kind = kinds[(i + rep) % kinds.length];
        await measure[kind]();
        series[kind].cores.push(coresBusySince(mark) ?? Number.NaN);
      }
      const c = series.calsync;
      ctx.log(
        `webhooks: calsync ${Math.round(c.rate[rep])} req/s p50 ${c.p50[rep].toFixed(2)} p99 ` +
          `${c.p99[rep].toFixed(2)} ms 2xx ${c.share2xx[rep].toFixed(1)}%; pgbench cte ` +
          `${Math.round(series.cte.rate[rep])} tps, 4 statements ` +
          `${Math.round(series.four.rate[rep])} tps; bare ${Math.round(series.bare.rate[rep])}` +
          ` req/s (${tool})`,
      );
    }
  } finally {
    await bare.stop();
    await stopDaemons([daemon]);
    await google.close();
    await retireProvider(db.sql, providerId);
  }
  return rows(series, {
    tool,
    connections: input.connections,
    seconds: input.seconds,
    cpuPerDelivery,
    perStatement,
    failedTx,
  });
}

/** Deliveries recorded and recording statements so far, from the daemon's batch histogram. */
async function recordingStatements(url: string): Promise<{ items: number; count: number }> {
  const samples = await scrapeMetrics(url);
  const labels = { statement: "google_notifications" };
  return {
    items: sumSamples(samples, "calsync_db_batch_size_sum", labels),
    count: sumSamples(samples, "calsync_db_batch_size_count", labels),
  };
}

function emptySeries(): Series {
  return { rate: [], p50: [], p99: [], share2xx: [], cores: [] };
}

function record(into: Series, rate: number, load: LoadResult | null): void {
  into.rate.push(rate);
  if (load) {
    into.p50.push(load.p50Ms);
    into.p99.push(load.p99Ms);
    into.share2xx.push(load.share2xx * 100);
  }
}

function cores(values: number[]): string {
  const known = values.filter(Number.isFinite);
  if (known.length === 0) return "?";
  return summarize(known).median.toFixed(1);
}

function rows(
  series: Record<Kind, Series>,
  about: {
    tool: string;
    connections: number;
    seconds: number;
    cpuPerDelivery: number[];
    perStatement: number[];
    failedTx: number;
  },
): Row[] {
  const tool = about.tool === "wrk" ? "wrk -t2" : "the Deno fallback load generator";
  const cpu = about.cpuPerDelivery.length > 0
    ? `; the daemon used ${Math.round(summarize(about.cpuPerDelivery).median)} µs CPU per delivery`
    : "";
  const grouped = about.perStatement.filter(Number.isFinite);
  const batches = grouped.length > 0
    ? `, ${summarize(grouped).median.toFixed(1)} deliveries per recording statement`
    : "";
  const busy = (kind: Kind) => `${cores(series[kind].cores)} of ${navigator.hardwareConcurrency}`;
  return [
    {
      id: "webhook_rps",
      metric: "Webhook ingestion vs pgbench (a)",
      unit: "req/s",
      better: "higher",
      calsync: summarize(series.calsync.rate),
      ceiling: summarize(series.cte.rate),
      notes: `ceiling (a): pgbench running the webhook's CTE statement, ${WEBHOOK_CLIENTS} ` +
        `clients, prepared; calsync: ${WEBHOOK_CLIENTS} clients via ${tool}, ${about.seconds} s ` +
        `runs over ${about.connections.toLocaleString("en-US")} connections (the scheduler ` +
        `leaves them alone, so only deliveries to idle connections NOTIFY); cores busy: ` +
        `calsync ${busy("calsync")}, pgbench ${busy("cte")}${cpu}${batches}; target >= 60%`,
    },
    {
      id: "webhook_rps_vs_bare",
      metric: "Webhook ingestion vs bare Deno.serve (b)",
      unit: "req/s",
      better: "higher",
      calsync: summarize(series.calsync.rate),
      ceiling: summarize(series.bare.rate),
      notes: "ceiling (b): Deno.serve answering 202, the same load generator and requests",
    },
    {
      id: "webhook_pgbench_four_statements_tps",
      metric: "Webhook write as BEGIN/INSERT/UPDATE/COMMIT (pgbench)",
      unit: "tps",
      better: "higher",
      calsync: null,
      ceiling: summarize(series.four.rate),
      notes: `reference: the same rows in four round trips (no NOTIFY); pgbench failed ` +
        `transactions in all runs: ${about.failedTx}`,
    },
    {
      id: "webhook_p50_ms",
      metric: "Webhook latency p50",
      unit: "ms",
      better: "lower",
      calsync: summarize(series.calsync.p50),
      ceiling: summarize(series.bare.p50),
      notes: "ceiling: bare Deno.serve under the same load",
    },
    {
      id: "webhook_p99_ms",
      metric: "Webhook latency p99",
      unit: "ms",
      better: "lower",
      calsync: summarize(series.calsync.p99),
      ceiling: summarize(series.bare.p99),
      notes: "ceiling: bare Deno.serve under the same load; target < 25 ms",
    },
    {
      id: "webhook_share_2xx",
      metric: "Webhook answers that were 2xx",
      unit: "%",
      better: "higher",
      calsync: summarize(series.calsync.share2xx),
      ceiling: summarize(series.bare.share2xx),
      notes: "every request is a distinct delivery for a known channel, so all should be 2xx",
    },
  ];
}

async function freshWebhookTables(sql: Sql, providerId: string): Promise<void> {
  // Each run starts from the same state, whichever ran before it: no keys, every connection idle.
  await sql`truncate webhook_dedupe_keys`;
  await sql`update external_calendar_connections set sync_needed = false
    where provider_id = ${providerId}`;
  await sql`vacuum analyze external_calendar_connections`;
}
