/**
 * @module The change feed's costs: a full sync with the outbox beside the same sync with its
 * triggers disabled (target >= 85 %), deliveries per second to a local receiver beside plain
 * sequential POSTs, commit-to-delivery latency, and commit-to-stdout of `changes --follow`.
 */
import type { Sql } from "../src/storage/client.ts";
import { countEvents } from "../src/storage/calendar_events.ts";
import { feedBounds } from "../src/storage/change_feed.ts";
import { insertConnection } from "../src/storage/connections.ts";
import { findSubscriber, insertSubscriber } from "../src/storage/subscribers.ts";
import { startDelivery } from "../src/feed/delivery_loop.ts";
import { generateSecret } from "../src/feed/webhook_signature.ts";
import { createMetrics } from "../src/metrics/metrics.ts";
import { startFakeGoogle } from "../testkit/fake_google.ts";
import { type BenchDaemon, startBenchDaemon, stopDaemons } from "./bench_daemon.ts";
import { insertBenchProvider, retireProvider } from "./fixtures.ts";
import type { BenchContext, Row } from "./report.ts";
import { percentile, summarize } from "./stats.ts";

/** Sizes of one run. */
export type ChangeFeedPlan = { syncEvents: number; deliveries: number; latencySamples: number };

const TRIGGERS = [
  ["external_calendar_events", "change_feed_events_insert"],
  ["external_calendar_events", "change_feed_events_update"],
  ["external_calendar_events", "change_feed_events_delete"],
  ["external_calendar_connections", "change_feed_connection_state"],
] as const;

async function setOutbox(sql: Sql, on: boolean): Promise<void> {
  for (const [table, trigger] of TRIGGERS) {
    await sql.unsafe(`alter table ${table} ${on ? "enable" : "disable"} trigger ${trigger}`);
  }
}

/** Runs every change feed measurement. */
export async function benchChangeFeed(
  ctx: BenchContext,
  db: { url: string; sql: Sql },
  plan: ChangeFeedPlan,
): Promise<Row[]> {
  const rows = [await outboxOverhead(ctx, db, plan.syncEvents)];
  rows.push(...await delivery(ctx, db.sql, plan));
  rows.push(await followLatency(ctx, db, plan.latencySamples));
  return rows;
}

async function outboxOverhead(
  ctx: BenchContext,
  db: { url: string; sql: Sql },
  size: number,
): Promise<Row> {
  const google = startFakeGoogle({ maxPageSize: 2_500 });
  google.addRefreshToken("rt-feed");
  const calendar = `feed-${size}@group.calendar.google.com`;
  google.seedEvents(calendar, size, { bytesEach: 1_024 });
  const providerId = await insertBenchProvider(db.sql, "feed");
  const started: BenchDaemon[] = [];
  const withOutbox: number[] = [];
  const without: number[] = [];
  try {
    const daemon = await startBenchDaemon({
      DATABASE_URL: db.url,
      GOOGLE_API_BASE_URL: google.baseUrl,
      GOOGLE_TOKEN_URL: google.tokenUrl,
      SYNC_PROVIDER_ALLOWLIST: "bench-feed",
    });
    started.push(daemon);
    await fullSync(db.sql, providerId, calendar, size); // warm-up
    for (let rep = 0; rep < ctx.reps; rep++) {
      // Alternate the order so neither always runs right after the other's checkpoint.
      for (const on of rep % 2 === 0 ? [true, false] : [false, true]) {
        await setOutbox(db.sql, on);
        (on ? withOutbox : without).push(await fullSync(db.sql, providerId, calendar, size));
      }
      ctx.log(
        `change feed: full sync ${size} with outbox ${Math.round(withOutbox[rep])}/s, ` +
          `without ${Math.round(without[rep])}/s`,
      );
    }
  } finally {
    await setOutbox(db.sql, true);
    await stopDaemons(started);
    await google.close();
    await retireProvider(db.sql, providerId);
  }
  return {
    id: "change_feed_full_sync_events_per_s",
    metric: `Full sync with the outbox, ${size} events`,
    unit: "events/s",
    better: "higher",
    calsync: summarize(withOutbox),
    ceiling: summarize(without),
    notes: "ceiling: the same full sync with the change feed triggers disabled; target >= 85%",
  };
}

/** A fresh connection of `calendar`, synced by the daemon; events per second end to end. */
async function fullSync(sql: Sql, providerId: string, calendar: string, size: number) {
  await sql`delete from external_calendar_connections
    where provider_id = ${providerId} and external_calendar_id = ${calendar}`;
  await sql`checkpoint`;
  const t0 = performance.now();
  const { id } = await insertConnection(sql, {
    providerId,
    externalCalendarId: calendar,
    refreshToken: "rt-feed",
    accountLabel: null,
  });
  for (;;) {
    const [row] = await sql<{ done: boolean; error_count: number }[]>`
      select not sync_needed and last_success_at is not null as done, error_count
      from external_calendar_connections where id = ${id}`;
    if (row.done) break;
    if (row.error_count > 0) throw new Error("The change feed bench's full sync failed");
    if (performance.now() - t0 > 300_000) throw new Error("The full sync did not finish");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const seconds = (performance.now() - t0) / 1000;
  if (await countEvents(sql, id) !== size) throw new Error("The full sync mirrored too few");
  return size / seconds;
}

type Arrival = { seq: number; committedAt: number; receivedAt: number };

function startSink(onArrival: (arrival: Arrival) => void) {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (r) => {
    const body = JSON.parse(await r.text());
    onArrival({
      seq: body.data?.seq ?? 0,
      committedAt: Date.parse(body.data?.committed_at ?? ""),
      receivedAt: Date.now(),
    });
    return new Response(null, { status: 204 });
  });
  return { url: `http://127.0.0.1:${server.addr.port}/hook`, close: () => server.shutdown() };
}

type Sink = ReturnType<typeof startSink> & { next(): Promise<Arrival> };

function startWaitableSink(): Sink {
  let waiter: ((arrival: Arrival) => void) | null = null;
  const sink = startSink((arrival) => waiter?.(arrival));
  return { ...sink, next: () => new Promise<Arrival>((resolve) => waiter = resolve) };
}

async function delivery(ctx: BenchContext, sql: Sql, plan: ChangeFeedPlan): Promise<Row[]> {
  const sink = startWaitableSink();
  const [connection] = await sql<{ id: string }[]>`
    select id from external_calendar_connections limit 1`;
  const runs = {
    rates: [] as number[],
    ceilings: [] as number[],
    p50: [] as number[],
    p99: [] as number[],
  };
  const loop = startDelivery({
    sql,
    metrics: createMetrics(),
    replicaId: "bench",
    concurrency: 4,
    timeoutMs: 10_000,
    backoffBaseMs: 100,
    backoffMaxMs: 1_000,
    maxFailingMs: 86_400_000,
    leaseMs: 60_000,
    maxMessages: 1_000_000,
    pollMs: 1_000,
  });
  try {
    for (let rep = 0; rep < ctx.reps; rep++) {
      const { rate, subscriberId } = await queuedThroughput(sql, sink, connection.id, {
        rep,
        count: plan.deliveries,
      });
      runs.rates.push(rate);
      runs.ceilings.push(await sequentialPosts(sink.url, plan.deliveries));
      const latencies = await commitToDelivery(sql, sink, connection.id, {
        rep,
        count: plan.latencySamples,
      });
      await sql`delete from change_subscribers where id = ${subscriberId}`;
      runs.p50.push(percentile(latencies, 50));
      runs.p99.push(percentile(latencies, 99));
      ctx.log(
        `change feed: ${Math.round(rate)} deliveries/s (plain POSTs ` +
          `${Math.round(runs.ceilings[rep])}/s), commit to delivery p99 ` +
          `${runs.p99[rep].toFixed(1)} ms`,
      );
    }
  } finally {
    await loop.stop(5_000);
    await sink.close();
  }
  return deliveryRows(plan, runs);
}

/** Queues `count` changes, adds a subscriber before them, times until it acknowledged all. */
async function queuedThroughput(
  sql: Sql,
  sink: Sink,
  connectionId: string,
  options: { rep: number; count: number },
): Promise<{ rate: number; subscriberId: string }> {
  const from = (await feedBounds(sql)).head;
  await sql`
    insert into external_calendar_events (connection_id, external_event_id, status, raw)
    select ${connectionId}, 'bench-delivery-' || ${options.rep} || '-' || n, 'confirmed', '{}'
    from generate_series(1, ${options.count}) n`;
  const head = (await feedBounds(sql)).head;
  const t0 = performance.now();
  const subscriber = await insertSubscriber(sql, {
    url: sink.url,
    connectionId: null,
    accountId: null,
    secret: generateSecret(),
    fromSeq: from,
  });
  while ((await findSubscriber(sql, subscriber.id))!.acked_seq < head) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return {
    rate: options.count / ((performance.now() - t0) / 1000),
    subscriberId: subscriber.id,
  };
}

/** One commit at a time, each waited for at the receiver: committed_at to arrival, in ms. */
async function commitToDelivery(
  sql: Sql,
  sink: Sink,
  connectionId: string,
  options: { rep: number; count: number },
): Promise<number[]> {
  const latencies: number[] = [];
  for (let i = 0; i < options.count; i++) {
    const arrived = sink.next();
    await sql`
      insert into external_calendar_events (connection_id, external_event_id, status, raw)
      values (${connectionId}, ${`bench-latency-${options.rep}-${i}`}, 'confirmed', '{}')`;
    const arrival = await arrived;
    latencies.push(arrival.receivedAt - arrival.committedAt);
  }
  return latencies;
}

function deliveryRows(
  plan: ChangeFeedPlan,
  runs: { rates: number[]; ceilings: number[]; p50: number[]; p99: number[] },
): Row[] {
  const latencyRow = (p: string, values: number[]): Row => ({
    id: `change_feed_commit_to_delivery_${p}_ms`,
    metric: `Change feed: commit to delivery, ${p}`,
    unit: "ms",
    better: "lower",
    calsync: summarize(values),
    ceiling: null,
    notes: `${plan.latencySamples} single-row commits per run, each delivered before the next; ` +
      "from the change's committed_at to its arrival at a local receiver",
  });
  return [
    {
      id: "change_feed_deliveries_per_s",
      metric: "Change feed: deliveries to one subscriber",
      unit: "msg/s",
      better: "higher",
      calsync: summarize(runs.rates),
      ceiling: summarize(runs.ceilings),
      notes: `${plan.deliveries} queued changes, one signed message each, in order; ` +
        "ceiling: plain sequential POSTs to the same local receiver",
    },
    latencyRow("p50", runs.p50),
    latencyRow("p99", runs.p99),
  ];
}

async function sequentialPosts(url: string, n: number): Promise<number> {
  const body = JSON.stringify({ data: { seq: 0, committed_at: new Date().toISOString() } });
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const response = await fetch(url, { method: "POST", body });
    await response.body?.cancel();
  }
  return n / ((performance.now() - t0) / 1000);
}

/** `calsync changes --after SEQ --follow --json` as a subprocess, read a line at a time. */
function spawnFollower(url: string, after: number) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("../main.ts", import.meta.url).pathname,
      "changes",
      "--after",
      String(after),
      "--follow",
      "--json",
    ],
    env: { DATABASE_URL: url },
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  return {
    async nextLine(): Promise<string> {
      while (!buffer.includes("\n")) {
        const { value, done } = await lines.read();
        if (done) throw new Error("changes --follow ended");
        buffer += value;
      }
      const at = buffer.indexOf("\n");
      const line = buffer.slice(0, at);
      buffer = buffer.slice(at + 1);
      return line;
    },
    async stop(): Promise<void> {
      child.kill("SIGTERM");
      // Cancelling the reader cancels the piped stdout as well.
      await lines.cancel().catch(() => {});
      await child.status;
    },
  };
}

/** Commit to the line on `calsync changes --follow`'s stdout (the issue's 100 ms target). */
async function followLatency(
  ctx: BenchContext,
  db: { url: string; sql: Sql },
  samples: number,
): Promise<Row> {
  const [connection] = await db.sql<{ id: string }[]>`
    select id from external_calendar_connections limit 1`;
  const insert = (id: string) =>
    db.sql`insert into external_calendar_events (connection_id, external_event_id, status, raw)
      values (${connection.id}, ${id}, 'confirmed', '{}')`;
  const p99s: number[] = [];
  for (let rep = 0; rep < ctx.reps; rep++) {
    const follower = spawnFollower(db.url, (await feedBounds(db.sql)).head);
    // The follower is listening once it prints the first change committed after it started.
    await insert(`bench-follow-${rep}-warm`);
    await follower.nextLine();
    const latencies: number[] = [];
    for (let i = 0; i < samples; i++) {
      await insert(`bench-follow-${rep}-${i}`);
      const change = JSON.parse(await follower.nextLine());
      latencies.push(Date.now() - Date.parse(change.committed_at));
    }
    await follower.stop();
    p99s.push(percentile(latencies, 99));
    ctx.log(`change feed: changes --follow commit to stdout p99 ${p99s[rep].toFixed(1)} ms`);
  }
  return {
    id: "change_feed_follow_p99_ms",
    metric: "Change feed: commit to `changes --follow` stdout, p99",
    unit: "ms",
    better: "lower",
    calsync: summarize(p99s),
    ceiling: null,
    notes: `${samples} single-row commits per run, each read before the next; target < 100 ms`,
  };
}
