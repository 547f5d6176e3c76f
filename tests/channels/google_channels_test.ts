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
import { startFakeGoogle } from "../../testkit/fake_google.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { createMigratedDatabase } from "../../testkit/scratch_database.ts";
import { serveApp } from "../support/serve_app.ts";
import { dueNow, only } from "../support/channel_rows.ts";

const REFRESH_TOKEN = "1//0g-refresh-token";
const MINUTE = 60_000;

async function seq(sql: Sql, connectionId: string): Promise<number> {
  const [row] = await sql<{ seq: number }[]>`
    select sync_requested_seq::int as seq from external_calendar_connections
    where id = ${connectionId}`;
  return row.seq;
}

Deno.test("Google watch channels", async (t) => {
  const logLines: string[] = [];
  await setupLogging("info", (line) => logLines.push(line));
  const google = startFakeGoogle({
    refreshTokens: [REFRESH_TOKEN],
    pushRetryBaseMs: 20,
    stoppedChannelGraceMs: 0,
  });
  const db = await createMigratedDatabase("channels_google");
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
    CALSYNC_PUBLIC_URL: server.url,
    GOOGLE_API_BASE_URL: google.baseUrl,
    GOOGLE_TOKEN_URL: google.tokenUrl,
    SYNC_HTTP_TIMEOUT_MS: "2000",
    SYNC_BACKOFF_BASE_MS: "60000",
    SYNC_BACKOFF_MAX_MS: "600000",
  });
  const deps: ChannelDeps = {
    ...createChannelDeps(config, db.sql, metrics, { replicaId: "test" }),
    overlapMs: 0,
  };
  const signal = new AbortController().signal;
  const provider = await insertProvider(db.sql, { kind: "google", name: "g", allowlisted: true });
  async function connection(calendar: string): Promise<string> {
    google.addCalendar(calendar);
    const { id } = await insertConnection(db.sql, {
      providerId: provider.id,
      externalCalendarId: calendar,
      refreshToken: REFRESH_TOKEN,
      accountLabel: null,
    });
    return id;
  }

  try {
    const main = await connection("primary");
    let channel: ChannelRow;

    await t.step("nothing happens without CALSYNC_PUBLIC_URL", async () => {
      assertEquals(await runChannelMaintenance({ ...deps, publicUrl: null }, signal), {
        connections: 0,
      });
      assertEquals((await listConnectionChannels(db.sql, main)).length, 0);
    });

    await t.step("a pass opens a channel; Google's sync message is acknowledged", async () => {
      const before = await seq(db.sql, main);
      assertEquals(await runChannelMaintenance(deps, signal), { connections: 1 });
      channel = only(await listConnectionChannels(db.sql, main));
      const remote = only(google.channels());
      assertEquals(channel.status, "active");
      assertEquals(channel.channel_id, remote.id);
      assertEquals(channel.resource_id, remote.resourceId);
      assertEquals(remote.token, channel.secret);
      assertEquals(remote.address, `${server.url}/webhooks/google`);
      assert(channel.expires_at!.getTime() > Date.now() + 6 * 24 * 60 * MINUTE);
      await google.flushDeliveries();
      const sync = google.deliveries.find((d) => d.state === "sync");
      assertEquals(sync?.status, 200);
      // Changes made before the channel existed must not wait for the next change.
      assertEquals(await seq(db.sql, main), before + 1);
      const [lease] = await db.sql`select lease_owner from external_calendar_connections
        where id = ${main}`;
      assertEquals(lease.lease_owner, null);
    });

    await t.step("a change pushed by Google requests a sync", async () => {
      const before = await seq(db.sql, main);
      google.putEvent("primary", { summary: "Standup" });
      await google.flushDeliveries();
      const change = google.deliveries.filter((d) => d.state === "exists");
      assertEquals(change.map((d) => d.status), [200]);
      assertEquals(await seq(db.sql, main), before + 1);
      const [keys] = await db.sql`select count(*)::int as n from webhook_dedupe_keys
        where connection_id = ${main}`;
      assertEquals(keys.n, 1);
    });

    await t.step("a channel that is not due needs no work", async () => {
      assertEquals(await runChannelMaintenance(deps, signal), { connections: 0 });
    });

    await t.step("renewal opens a new channel, then stops the old one", async () => {
      const before = await seq(db.sql, main);
      await dueNow(db.sql, channel.id);
      await runChannelMaintenance(deps, signal);
      const rows = await listConnectionChannels(db.sql, main);
      assertEquals(rows.map((row) => row.status).sort(), ["active", "stopping"]);
      const fresh = rows.find((row) => row.status === "active")!;
      assert(fresh.channel_id !== channel.channel_id);
      assert(fresh.secret !== channel.secret);
      assertEquals(google.channels().filter((c) => c.stoppedAt === null).length, 2);

      await runChannelMaintenance(deps, signal);
      assertEquals((await listConnectionChannels(db.sql, main)).map((row) => row.id), [fresh.id]);
      const old = google.channels().find((c) => c.id === channel.channel_id);
      assert(old?.stoppedAt !== null, "old channel stopped at Google");
      // The old channel listened until the new one did: no sync needed for the handover.
      assertEquals(await seq(db.sql, main), before);
      channel = fresh;

      google.putEvent("primary", { summary: "Retro" });
      await google.flushDeliveries();
      const last = google.deliveries.at(-1)!;
      assertEquals([last.channelId, last.status], [fresh.channel_id, 200]);
      assertEquals(await seq(db.sql, main), before + 1);
    });

    await t.step("a failed watch backs off, is counted, and retries with a new id", async () => {
      const team = await connection("team@example.com");
      google.setFault({ kind: "status", status: 503 }, { target: "push", times: 1 });
      await runChannelMaintenance(deps, signal);
      const failed = only(await listConnectionChannels(db.sql, team));
      assertEquals([failed.status, failed.error_count], ["creating", 1]);
      const wait = failed.next_work_at!.getTime() - Date.now();
      assert(wait > 25_000 && wait <= 60_000, `backoff ${wait} ms`);
      const counted = (await metrics.syncFailures.get()).values.find((v) =>
        v.labels.provider === "google" && v.labels.reason === "provider_unavailable"
      );
      assertEquals(counted?.value, 1);
      assert(logLines.some((line) => line.includes('"operation":"create"')));

      assertEquals(await runChannelMaintenance(deps, signal), { connections: 0 });
      await dueNow(db.sql, failed.id);
      await runChannelMaintenance(deps, signal);
      const retried = only(await listConnectionChannels(db.sql, team));
      assertEquals([retried.id, retried.status, retried.error_count], [failed.id, "active", 0]);
      assert(retried.channel_id !== failed.channel_id, "a retry uses a new channel id");
    });

    await t.step("a calendar that cannot push is asked again a day later", async () => {
      const holidays = await connection("en.usa#holiday@group.v.calendar.google.com");
      google.setPushSupported("en.usa#holiday@group.v.calendar.google.com", false);
      await runChannelMaintenance(deps, signal);
      const row = only(await listConnectionChannels(db.sql, holidays));
      assertEquals(row.status, "creating");
      assert(row.next_work_at!.getTime() > Date.now() + 23 * 60 * MINUTE);
    });

    await t.step("connections remove stops the channel at Google first", async () => {
      const out: string[] = [];
      await runCommand(config, ["connections", "remove"], { connection: main }, {
        out: (text) => out.push(text),
      });
      assertEquals(out, [`Connection ${main} removed with its events\n`]);
      const remote = google.channels().find((c) => c.id === channel.channel_id);
      assert(remote?.stoppedAt !== null, "channel stopped at Google");
      assertEquals((await listConnectionChannels(db.sql, main)).length, 0);
    });

    await t.step("no log line carries a channel token", () => {
      const secrets = google.channels().map((c) => c.token!).filter(Boolean);
      assert(secrets.length >= 3);
      for (const line of logLines) {
        for (const secret of secrets) assert(!line.includes(secret), `token in: ${line}`);
      }
    });
  } finally {
    await server.close();
    await google.close();
    await db.close();
    await teardownLogging();
  }
});
