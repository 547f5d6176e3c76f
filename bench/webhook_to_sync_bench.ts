/**
 * @module Webhook to sync: from a delivery's 2xx to the fake provider receiving that connection's
 * list request, beside the floor of any LISTEN/NOTIFY wake-up: a NOTIFY reaching a listener.
 */
import type { Sql } from "../src/storage/client.ts";
import { type FakeGoogle, startFakeGoogle } from "../testkit/fake_google.ts";
import { type BenchDaemon, startBenchDaemon, stopDaemons } from "./bench_daemon.ts";
import {
  countPending,
  incrementalCursor,
  insertBenchProvider,
  requestAllSyncs,
  retireProvider,
  type SeededChannel,
  seedGoogleChannels,
  seedIdleConnections,
} from "./fixtures.ts";
import type { BenchContext, Row } from "./report.ts";
import { percentile, summarize } from "./stats.ts";

const PROBE_CHANNEL = "calsync_bench_probe";

/** Measures `samples` webhook-to-list latencies per repetition, one delivery at a time. */
export async function benchWebhookToSync(
  ctx: BenchContext,
  db: { url: string; sql: Sql },
  samples: number,
): Promise<Row[]> {
  const google = startFakeGoogle();
  google.addRefreshToken("rt-w2s");
  let daemon: BenchDaemon | null = null;
  let providerId: string | null = null;
  const stats: Record<"ack50" | "ack99" | "send50" | "send99" | "floor50" | "floor99", number[]> = {
    ack50: [],
    ack99: [],
    send50: [],
    send99: [],
    floor50: [],
    floor99: [],
  };
  try {
    providerId = await insertBenchProvider(db.sql, "w2s");
    const connections = await seedIdleConnections(db.sql, {
      providerId,
      count: samples,
      calendarPrefix: "w2s-",
      refreshToken: "rt-w2s",
      // In today's window and synced before: each sample's sync is one incremental request,
      // not a new full round with a first-success change.
      cursorFor: (calendarId) => incrementalCursor(calendarId),
      syncedBefore: true,
    });
    for (const connection of connections) google.addCalendar(connection.calendarId);
    const channels = await seedGoogleChannels(
      db.sql,
      connections,
      `w2s-${crypto.randomUUID().slice(0, 6)}-`,
    );
    daemon = await startBenchDaemon({
      DATABASE_URL: db.url,
      GOOGLE_API_BASE_URL: google.baseUrl,
      GOOGLE_TOKEN_URL: google.tokenUrl,
    });
    // Sync everything once: tokens are cached and the daemon is warm, as in steady state.
    await requestAllSyncs(db.sql, providerId);
    await waitDrained(db.sql, providerId);
    let message = 1;
    for (let rep = 0; rep < ctx.reps; rep++) {
      const gaps: Gaps[] = [];
      for (const channel of channels) {
        gaps.push(await deliverAndWait(daemon.url, google, channel, message++));
      }
      await waitDrained(db.sql, providerId);
      const floor = await notifyLatencies(db.sql, samples);
      const fromAck = gaps.map((g) => g.fromAck);
      const fromSend = gaps.map((g) => g.fromSend);
      stats.ack50.push(percentile(fromAck, 50));
      stats.ack99.push(percentile(fromAck, 99));
      stats.send50.push(percentile(fromSend, 50));
      stats.send99.push(percentile(fromSend, 99));
      stats.floor50.push(percentile(floor, 50));
      stats.floor99.push(percentile(floor, 99));
      ctx.log(
        `webhook->sync from 2xx p50 ${stats.ack50[rep].toFixed(2)} p99 ` +
          `${stats.ack99[rep].toFixed(2)} ms; from send p50 ${stats.send50[rep].toFixed(2)} p99 ` +
          `${stats.send99[rep].toFixed(2)} ms; NOTIFY->LISTEN p50 ` +
          `${stats.floor50[rep].toFixed(2)} p99 ${stats.floor99[rep].toFixed(2)} ms`,
      );
    }
  } finally {
    if (daemon) await stopDaemons([daemon]);
    await google.close();
    if (providerId) await retireProvider(db.sql, providerId);
  }
  const how = `${samples} deliveries per run, one at a time, each to an idle connection`;
  const rows: Row[] = [];
  for (const p of [50, 99] as const) {
    rows.push({
      id: `webhook_to_sync_p${p}_ms`,
      metric: `Webhook 2xx to sync start, p${p}`,
      unit: "ms",
      better: "lower",
      calsync: summarize(stats[`ack${p}`]),
      ceiling: null,
      notes: `until the fake receives the connection's list request; ${how}; a list request ` +
        `that beats the 2xx counts as 0` + (p === 99 ? "; target < 100 ms" : ""),
    });
  }
  for (const p of [50, 99] as const) {
    rows.push({
      id: `webhook_send_to_sync_p${p}_ms`,
      metric: `Webhook sent to sync start, p${p}`,
      unit: "ms",
      better: "lower",
      calsync: summarize(stats[`send${p}`]),
      ceiling: summarize(stats[`floor${p}`]),
      notes: `the same deliveries timed from sending; ceiling: a pg_notify statement sent to ` +
        `its LISTENer's callback`,
    });
  }
  return rows;
}

async function waitDrained(sql: Sql, providerId: string): Promise<void> {
  const deadline = performance.now() + 60_000;
  while ((await countPending(sql, providerId)) > 0) {
    if (performance.now() > deadline) throw new Error("Connections did not sync within 60 s");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Wall-clock milliseconds with sub-millisecond precision, comparable with `Date.now()`. */
function now(): number {
  return performance.timeOrigin + performance.now();
}

/** Gaps of one delivery, in ms, to the fake seeing the calendar's list call. */
type Gaps = { fromAck: number; fromSend: number };

/** Sends one delivery and waits for the list request it causes. */
async function deliverAndWait(
  daemonUrl: string,
  google: FakeGoogle,
  channel: SeededChannel,
  messageNumber: number,
): Promise<Gaps> {
  const path = `/calendar/v3/calendars/${encodeURIComponent(channel.calendarId)}/events`;
  const from = google.requests.length;
  const sent = now();
  const response = await fetch(`${daemonUrl}/webhooks/google`, {
    method: "POST",
    headers: {
      "x-goog-channel-id": channel.channelId,
      "x-goog-channel-token": channel.token,
      "x-goog-resource-id": channel.resourceId,
      "x-goog-resource-uri": `https://www.googleapis.com/calendar/v3/calendars/x/events`,
      "x-goog-resource-state": "exists",
      "x-goog-message-number": String(messageNumber),
    },
  });
  const acked = now();
  const body = await response.text();
  if (response.status < 200 || response.status >= 300) {
    throw new Error(`Webhook answered ${response.status}: ${body}`);
  }
  const deadline = performance.now() + 10_000;
  for (;;) {
    // The fake runs in this process: it logs a request in the event-loop turn it arrives, so
    // looking every turn times arrivals more finely than its whole-millisecond stamps.
    const seen = now();
    if (google.requests.slice(from).some((r) => r.method === "GET" && r.path === path)) {
      // NOTIFY goes out at commit, before the 2xx is written: the list call can beat the ack.
      return { fromAck: Math.max(0, seen - acked), fromSend: seen - sent };
    }
    if (performance.now() > deadline) {
      throw new Error(`No list request for ${channel.calendarId} within 10 s of its webhook`);
    }
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}

/** The floor: ms from sending a `pg_notify` statement to a listener on another connection. */
async function notifyLatencies(sql: Sql, samples: number): Promise<number[]> {
  const received = new Map<string, number>();
  const listener = await sql.listen(PROBE_CHANNEL, (payload) => received.set(payload, now()));
  try {
    const latencies: number[] = [];
    for (let i = 0; i < samples; i++) {
      const payload = `p${i}`;
      const sent = now();
      await sql`select pg_notify(${PROBE_CHANNEL}, ${payload})`;
      const deadline = performance.now() + 5_000;
      while (!received.has(payload)) {
        if (performance.now() > deadline) throw new Error("A NOTIFY never reached the listener");
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
      latencies.push((received.get(payload) ?? sent) - sent);
    }
    return latencies;
  } finally {
    await listener.unlisten();
  }
}
