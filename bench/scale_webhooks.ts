/**
 * @module Webhook ingestion at scale: a real daemon on the big database receives Google
 * deliveries spread over random channels of all it holds (so its one-minute channel cache mostly
 * misses), beside the same daemon and load over 1,000 channels, in alternating runs. The load
 * generator and its counting are the webhook bench's (load_generator.ts).
 */
import type { Sql } from "../src/storage/client.ts";
import { startFakeGoogle } from "../testkit/fake_google.ts";
import { startBenchDaemon, stopDaemons } from "./bench_daemon.ts";
import { hasWrk, type LoadChannel, type LoadResult, runLoad } from "./load_generator.ts";
import { summarize } from "./stats.ts";
import { WEBHOOK_CLIENTS } from "./webhook_bench.ts";
import type { Log } from "./scale_generate.ts";

const SMALL_SET = 1_000;
/** Distinct channels the load cycles through: more than a run delivers, so few repeat. */
const LARGE_SET = 200_000;
const REPS = 3;

/** Loads two channel sets in alternating runs; report lines in the scale report's form. */
export async function webhooksAtScale(
  db: { sql: Sql; url: string },
  seconds: number,
  log: Log,
): Promise<string[]> {
  const [{ n }] = await db.sql<{ n: number }[]>`
    select count(*)::int as n from webhook_channels where provider = 'google'`;
  const [{ total }] = await db.sql<{ total: number }[]>`
    select count(*)::int as total from webhook_channels`;
  const large = await sampleChannels(db.sql, Math.min(LARGE_SET, n));
  const small = large.slice(0, Math.min(SMALL_SET, large.length));
  const google = startFakeGoogle();
  // No provider is allowlisted by this name: nothing syncs, the runs measure ingestion only.
  const daemon = await startBenchDaemon({
    DATABASE_URL: db.url,
    GOOGLE_API_BASE_URL: google.baseUrl,
    GOOGLE_TOKEN_URL: google.tokenUrl,
    SYNC_PROVIDER_ALLOWLIST: "bench-nothing-syncs",
  });
  const useWrk = await hasWrk();
  const results: Record<"small" | "large", LoadResult[]> = { small: [], large: [] };
  let run = 0;
  const load = (channels: LoadChannel[], seconds: number) =>
    runLoad({
      url: `${daemon.url}/webhooks/google`,
      channels,
      concurrency: WEBHOOK_CLIENTS,
      seconds,
      run: ++run,
    }, useWrk);
  try {
    log(`scale: webhooks over ${small.length} and ${large.length} channels`);
    await load(small, 1);
    for (let rep = 0; rep < REPS; rep++) {
      const order = rep % 2 === 0 ? (["large", "small"] as const) : (["small", "large"] as const);
      for (const set of order) {
        results[set].push(await load(set === "small" ? small : large, seconds));
      }
    }
  } finally {
    await stopDaemons([daemon]);
    await google.close();
  }
  const row = (label: string, r: LoadResult[]) =>
    `| ${label} | ${fmt(r.map((x) => x.requestsPerSecond), 0)} | ` +
    `${fmt(r.map((x) => x.p50Ms), 2)} | ${fmt(r.map((x) => x.p99Ms), 2)} | ` +
    `${fmt(r.map((x) => x.share2xx * 100), 1)} |`;
  return [
    `Webhook ingestion with ${total.toLocaleString("en")} channels stored ` +
    `(${n.toLocaleString("en")} Google): ${WEBHOOK_CLIENTS} clients (${
      results.large[0]?.tool ?? "?"
    }), ${REPS} alternating runs of ${seconds} s each, median (min–max); every delivery's ` +
    "connection already had a sync requested, so no run NOTIFYs:",
    "| channels the deliveries go to | deliveries/s | p50 ms | p99 ms | 2xx % |",
    "| --- | --- | --- | --- | --- |",
    row(`${small.length.toLocaleString("en")} (cached after the first minute)`, results.small),
    row(`${large.length.toLocaleString("en")} random of ${n.toLocaleString("en")}`, results.large),
    "",
  ];
}

function fmt(values: number[], digits: number): string {
  const s = summarize(values);
  return `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;
}

/**
 * `count` random Google channels, and their connections marked as requested (as a first delivery
 * would), so no delivery of either set is an idle -> due transition that NOTIFYs.
 */
async function sampleChannels(sql: Sql, count: number): Promise<LoadChannel[]> {
  const rows = await sql<
    {
      connection_id: string;
      channel_id: string;
      secret: string;
      resource_id: string;
      cal: string;
    }[]
  >`
    select w.connection_id, w.channel_id, w.secret, w.resource_id, c.external_calendar_id as cal
    from webhook_channels w join external_calendar_connections c on c.id = w.connection_id
    where w.provider = 'google' and w.status = 'active'
    order by random() limit ${count}`;
  await sql`update external_calendar_connections set sync_needed = true
    where id = any(${rows.map((r) => r.connection_id)}::uuid[])`;
  return rows.map((r) => ({
    channelId: r.channel_id,
    token: r.secret,
    resourceId: r.resource_id,
    uri: `https://www.googleapis.com/calendar/v3/calendars/${r.cal}/events?alt=json`,
  }));
}
