/**
 * A delivery answered 503 must never commit later. Under each database fault the fault proxy
 * injects, deliveries time out, then the fault clears and the pool is drained (every statement
 * that reached it has run or died): no dedupe key of a 503'd delivery may exist.
 */
import { createApp } from "../../src/http/app.ts";
import { startHttpServer } from "../../src/http/server.ts";
import { createMetrics } from "../../src/metrics/metrics.ts";
import { openSql } from "../../src/storage/client.ts";
import { insertProvider } from "../../src/storage/calendar_providers.ts";
import { insertConnection } from "../../src/storage/connections.ts";
import { insertChannel } from "../../src/storage/webhook_channels.ts";
import { mountWebhooks } from "../../src/webhooks/routes.ts";
import { type FaultProxy, startFaultProxy } from "../../testkit/fault_proxy.ts";
import { assert, assertEquals, waitFor } from "../support/assert.ts";
import { createMigratedDatabase } from "../../testkit/scratch_database.ts";
import { tolerateStrayEpipe } from "../support/stray_epipe.ts";

const SECRET = "Lz0Xc2Vb4Nm6QpZx8Qw2Er4Ty6Ui8Op0As2Df4Gh6Jk8";
const DELIVERIES = 40;

async function lateCommitsUnder(
  fault: (proxy: FaultProxy) => void,
  clear: (proxy: FaultProxy) => Promise<void>,
) {
  using _stray = tolerateStrayEpipe();
  await using db = await createMigratedDatabase("late_commits");
  const provider = await insertProvider(db.sql, { kind: "google", name: "g", allowlisted: true });
  const { id: connectionId } = await insertConnection(db.sql, {
    providerId: provider.id,
    externalCalendarId: "primary",
    refreshToken: "r",
    accountLabel: null,
  });
  const channelId = crypto.randomUUID();
  await insertChannel(db.sql, { connectionId, provider: "google", channelId, secret: SECRET });

  const target = new URL(db.url);
  const proxy = await startFaultProxy({
    targetHostname: target.hostname,
    targetPort: Number(target.port || 5432),
  });
  const pool = openSql(proxy.url(db.url), { max: 2, connectTimeoutMs: 1_000 });
  const metrics = createMetrics();
  const app = createApp({
    metrics,
    readiness: () => Promise.resolve({ ready: true }),
    maxBodyBytes: 65_536,
    routes: (app) =>
      mountWebhooks(app, {
        sql: () => pool,
        metrics,
        deadlineMs: 300,
        queue: { maxConcurrent: 2, maxQueued: 10 },
      }),
  });
  const server = await startHttpServer(app, { hostname: "127.0.0.1", port: 0, metrics });
  const deliver = async (messageNumber: number) => {
    const response = await fetch(`http://127.0.0.1:${server.port}/webhooks/google`, {
      method: "POST",
      headers: {
        "x-goog-channel-id": channelId,
        "x-goog-channel-token": SECRET,
        "x-goog-message-number": String(messageNumber),
        "x-goog-resource-state": "exists",
        "x-goog-resource-id": "r",
        "x-goog-resource-uri": "https://www.googleapis.com/calendar/v3/calendars/primary/events",
      },
    });
    await response.body?.cancel();
    return response.status;
  };
  try {
    // Warm: the channel is cached, so the deliveries below need only the recording statement
    // (those that arrive together share one).
    assertEquals(await deliver(1), 200);
    fault(proxy);
    const statuses = await Promise.all(
      Array.from({ length: DELIVERIES }, (_, i) => deliver(100 + i)),
    );
    assertEquals(statuses.filter((s) => s !== 503), [], "every delivery during the fault is a 503");
    await clear(proxy);
    // Back to normal once a fresh delivery commits.
    let next = 1_000;
    await waitFor(async () => (await deliver(next++)) === 200, { what: "recovery" });
    // Ending the pool waits for every statement it still holds; after it, nothing more can run.
    await pool.end({ timeout: 5 });
    const [{ late }] = await db.sql<{ late: number }[]>`
      select count(*)::int as late from webhook_dedupe_keys
      where key = any(${
      Array.from({ length: DELIVERIES }, (_, i) => `google:${channelId}:${100 + i}`)
    }::text[])`;
    const shed = (await metrics.databaseShed.get()).values.reduce((sum, v) => sum + v.value, 0);
    return { late, shed };
  } finally {
    await server.shutdown();
    await pool.end({ timeout: 1 });
    await proxy.close();
  }
}

Deno.test("no delivery answered 503 during a database outage commits after it (refused and reset)", async () => {
  const { late, shed } = await lateCommitsUnder(
    (proxy) => {
      void proxy.refuseNew(true);
      proxy.resetAll();
    },
    (proxy) => proxy.refuseNew(false),
  );
  assertEquals(late, 0);
  assert(shed > 0, "work beyond the pool waited in the gate and was shed there");
});

Deno.test("no delivery answered 503 while the database link is blackholed commits after it", async () => {
  const { late } = await lateCommitsUnder(
    (proxy) => proxy.blackhole(true),
    (proxy) => Promise.resolve(proxy.blackhole(false)),
  );
  assertEquals(late, 0);
});
