import type { ChannelDeps } from "../../src/channels/channel_deps.ts";
import { createChannelDeps } from "../../src/daemon/wiring.ts";
import { runChannelMaintenance } from "../../src/maintenance/channel_pass.ts";
import { runCommand } from "../../src/cli/commands.ts";
import { loadConfig } from "../../src/config/config.ts";
import type { Sql } from "../../src/storage/client.ts";
import { insertConnection } from "../../src/storage/connections.ts";
import { insertProvider } from "../../src/storage/calendar_providers.ts";
import { type ChannelRow, listConnectionChannels } from "../../src/storage/webhook_channels.ts";
import { createApp } from "../../src/http/app.ts";
import { setupLogging, teardownLogging } from "../../src/log/setup.ts";
import { createMetrics } from "../../src/metrics/metrics.ts";
import { mountWebhooks } from "../../src/webhooks/routes.ts";
import { startFakeMicrosoft } from "../../testkit/fake_microsoft.ts";
import { assert, assertEquals, waitFor } from "../support/assert.ts";
import { createMigratedDatabase } from "../../testkit/scratch_database.ts";
import { serveApp } from "../support/serve_app.ts";
import { dueNow, only } from "../support/channel_rows.ts";

const REFRESH_TOKEN = "M.C507_BAY.0.U.-refresh";
const MINUTE = 60_000;

async function connectionRow(sql: Sql, connectionId: string) {
  const [row] = await sql<
    { seq: number; full_seq: number | null; cursor: unknown; refresh_token: string }[]
  >`
    select sync_requested_seq::int as seq, full_sync_requested_seq::int as full_seq, sync_cursor as cursor, refresh_token
    from external_calendar_connections where id = ${connectionId}`;
  return row;
}

Deno.test("Microsoft Graph subscriptions", async (t) => {
  const logLines: string[] = [];
  await setupLogging("info", (line) => logLines.push(line));
  // The older 4,230-minute cap, which some tenants still enforce (wire formats §4.6).
  const graph = startFakeMicrosoft({
    refreshTokens: [REFRESH_TOKEN],
    rotateStrict: true,
    maxSubscriptionMinutes: 4_230,
    notificationRetryBaseMs: 20,
  });
  const db = await createMigratedDatabase("channels_microsoft");
  const metrics = createMetrics();
  const app = createApp({
    metrics,
    readiness: () => Promise.resolve({ ready: true }),
    maxBodyBytes: 1_048_576,
    routes: (app) => mountWebhooks(app, { sql: () => db.sql, metrics, deadlineMs: 2_500 }),
  });
  const server = await serveApp(app);
  const config = loadConfig({
    DATABASE_URL: db.url,
    CALSYNC_PUBLIC_URL: `${server.url}/`,
    MICROSOFT_GRAPH_BASE_URL: graph.baseUrl,
    MICROSOFT_TOKEN_URL: graph.tokenUrl,
    SYNC_HTTP_TIMEOUT_MS: "2000",
    SYNC_BACKOFF_BASE_MS: "60000",
    SYNC_BACKOFF_MAX_MS: "600000",
  });
  const deps: ChannelDeps = createChannelDeps(config, db.sql, metrics, { replicaId: "test" });
  const signal = new AbortController().signal;
  const provider = await insertProvider(db.sql, {
    kind: "microsoft",
    name: "m",
    allowlisted: true,
  });
  const { id: main } = await insertConnection(db.sql, {
    providerId: provider.id,
    externalCalendarId: "primary",
    refreshToken: REFRESH_TOKEN,
    accountLabel: null,
  });

  try {
    let row: ChannelRow;

    await t.step("a pass creates a subscription through the validation handshake", async () => {
      const before = await connectionRow(db.sql, main);
      assertEquals(await runChannelMaintenance(deps, signal), { connections: 1 });
      row = only(await listConnectionChannels(db.sql, main));
      const remote = only(graph.subscriptions());
      assertEquals([row.status, row.channel_id], ["active", remote.id]);
      assertEquals(remote.clientState, row.secret);
      assertEquals(remote.resource, "me/events");
      assertEquals(remote.changeType, "created,updated,deleted");
      assertEquals(remote.notificationUrl, `${server.url}/webhooks/microsoft`);
      assertEquals(remote.lifecycleNotificationUrl, `${server.url}/webhooks/microsoft`);
      const validations = graph.deliveries.filter((d) => d.kind === "validation");
      assertEquals(validations.map((d) => d.status), [200, 200]);
      assert(row.expires_at!.getTime() <= Date.now() + 4_230 * MINUTE);
      const after = await connectionRow(db.sql, main);
      assertEquals(after.seq, before.seq + 1);
      // Graph rotated the refresh token; the pass held the lease, so the new one was stored.
      assert(after.refresh_token !== REFRESH_TOKEN, "rotated refresh token stored");
      assert(graph.currentRefreshTokens().includes(after.refresh_token));
    });

    await t.step("a change notification from Graph requests a sync", async () => {
      const before = await connectionRow(db.sql, main);
      graph.putEvent("primary", { subject: "Planning" });
      await graph.flushDeliveries();
      const notes = graph.deliveries.filter((d) => d.kind === "notification");
      assertEquals(notes.map((d) => d.status), [202]);
      assertEquals((await connectionRow(db.sql, main)).seq, before.seq + 1);
    });

    await t.step("a due subscription is renewed with PATCH", async () => {
      const expires = graph.subscriptions()[0].expirationDateTime;
      await dueNow(db.sql, row.id);
      await new Promise((resolve) => setTimeout(resolve, 20));
      await runChannelMaintenance(deps, signal);
      const renewed = only(await listConnectionChannels(db.sql, main));
      assertEquals([renewed.id, renewed.channel_id], [row.id, row.channel_id]);
      assert(renewed.renewed_at!.getTime() > row.renewed_at!.getTime());
      assert(renewed.next_work_at!.getTime() > Date.now() + 60 * MINUTE);
      assert(graph.subscriptions()[0].expirationDateTime !== expires);
      row = renewed;
    });

    await t.step("reauthorizationRequired leads to a renewal", async () => {
      graph.emitLifecycle(row.channel_id!, "reauthorizationRequired");
      await graph.flushDeliveries();
      const marked = only(await listConnectionChannels(db.sql, main));
      assert(marked.next_work_at!.getTime() <= Date.now(), "renewal due now");
      await runChannelMaintenance(deps, signal);
      const renewed = only(await listConnectionChannels(db.sql, main));
      assert(renewed.renewed_at!.getTime() > row.renewed_at!.getTime());
      row = renewed;
    });

    await t.step("missed requests a full sync", async () => {
      await db.sql`update external_calendar_connections set sync_cursor = '{"position":1}'
        where id = ${main}`;
      const before = await connectionRow(db.sql, main);
      graph.emitLifecycle(row.channel_id!, "missed");
      await graph.flushDeliveries();
      const after = await connectionRow(db.sql, main);
      assertEquals([after.seq, after.full_seq], [before.seq + 1, before.seq + 1]);
    });

    await t.step("subscriptionRemoved leads to a new subscription and a sync", async () => {
      const before = await connectionRow(db.sql, main);
      graph.emitLifecycle(row.channel_id!, "subscriptionRemoved");
      await graph.flushDeliveries();
      assertEquals(only(await listConnectionChannels(db.sql, main)).status, "removed");
      await runChannelMaintenance(deps, signal);
      const fresh = only(await listConnectionChannels(db.sql, main));
      assertEquals(fresh.status, "active");
      assertEquals(fresh.channel_id, only(graph.subscriptions()).id);
      assert(fresh.channel_id !== row.channel_id);
      assertEquals((await connectionRow(db.sql, main)).seq, before.seq + 1);
      row = fresh;
    });

    await t.step("a subscription Graph forgot is recreated on renewal (404)", async () => {
      const response = await fetch(`${graph.baseUrl}/subscriptions/${row.channel_id}`, {
        method: "DELETE",
        headers: { authorization: `Bearer ${graph.issueAccessToken()}` },
      });
      assertEquals(response.status, 204);
      await response.body?.cancel();
      await dueNow(db.sql, row.id);
      await runChannelMaintenance(deps, signal);
      const fresh = only(await listConnectionChannels(db.sql, main));
      assertEquals(fresh.channel_id, only(graph.subscriptions()).id);
      assert(fresh.id !== row.id);
      row = fresh;
    });

    await t.step("a throttled renewal waits at least Retry-After and is counted", async () => {
      graph.setFault({ kind: "status", status: 429, retryAfter: "900" }, {
        target: "push",
        times: 1,
      });
      await dueNow(db.sql, row.id);
      await runChannelMaintenance(deps, signal);
      const failed = only(await listConnectionChannels(db.sql, main));
      assertEquals([failed.status, failed.error_count], ["active", 1]);
      assert(failed.next_work_at!.getTime() >= Date.now() + 890_000);
      const counted = (await metrics.syncFailures.get()).values.find((v) =>
        v.labels.provider === "microsoft" && v.labels.reason === "rate_limited"
      );
      assertEquals(counted?.value, 1);
    });

    await t.step("connections remove deletes the subscription first", async () => {
      await runCommand(config, ["connections", "remove"], { connection: main }, { out: () => {} });
      await waitFor(() => graph.subscriptions().length === 0, { what: "subscription deleted" });
      assertEquals((await listConnectionChannels(db.sql, main)).length, 0);
    });

    await t.step("no log line carries a clientState", () => {
      assert(logLines.length > 0);
      for (const line of logLines) assert(!line.includes(row.secret), `clientState in: ${line}`);
    });
  } finally {
    await server.close();
    await graph.close();
    await db.close();
    await teardownLogging();
  }
});
