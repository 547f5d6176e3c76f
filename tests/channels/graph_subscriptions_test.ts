import { runCommand } from "../../src/cli/commands.ts";
import type { Sql } from "../../src/storage/client.ts";
import { listConnectionChannels } from "../../src/storage/webhook_channels.ts";
import { type FakeMicrosoft, startFakeMicrosoft } from "../../testkit/fake_microsoft.ts";
import { assert, assertEquals, waitFor } from "../support/assert.ts";
import { dueNow, only } from "../support/channel_rows.ts";
import { type ChannelFixture, channelFixture } from "../support/channel_fixture.ts";

const REFRESH_TOKEN = "M.C507_BAY.0.U.-refresh";
const MINUTE = 60_000;

/** Graph subscriptions pushing to our endpoints (public URL given with a trailing slash). */
function graphSubscriptions(): Promise<ChannelFixture<FakeMicrosoft>> {
  return channelFixture("microsoft", {
    // The older 4,230-minute cap, which some tenants still enforce (wire formats §4.6).
    fake: () =>
      startFakeMicrosoft({
        refreshTokens: [REFRESH_TOKEN],
        rotateStrict: true,
        maxSubscriptionMinutes: 4_230,
        notificationRetryBaseMs: 20,
      }),
    env: (graph) => ({
      MICROSOFT_GRAPH_BASE_URL: graph.baseUrl,
      MICROSOFT_TOKEN_URL: graph.tokenUrl,
    }),
    publicUrl: (serverUrl) => `${serverUrl}/`,
    refreshToken: REFRESH_TOKEN,
  });
}

/** Adds the "primary" connection and subscribes it with one pass; returns both. */
async function subscribed(fx: ChannelFixture<FakeMicrosoft>) {
  const main = await fx.connection("primary");
  await fx.pass();
  const row = only(await listConnectionChannels(fx.db.sql, main));
  assertEquals(row.status, "active");
  return { main, row };
}

async function connectionRow(sql: Sql, connectionId: string) {
  const [row] = await sql<
    { seq: number; full_seq: number | null; cursor: unknown; refresh_token: string }[]
  >`
    select sync_requested_seq::int as seq, full_sync_requested_seq::int as full_seq,
      sync_cursor as cursor, a.refresh_token
    from external_calendar_connections c join calendar_accounts a on a.id = c.account_id
    where c.id = ${connectionId}`;
  return row;
}

/** Waits until the clock has left the millisecond of `time`, so a later one compares greater. */
async function clockPast(time: Date): Promise<void> {
  await waitFor(() => Date.now() > time.getTime(), { what: "the clock to move on" });
}

Deno.test("a pass creates a Graph subscription through the validation handshake", async () => {
  await using fx = await graphSubscriptions();
  const main = await fx.connection("primary");
  const before = await connectionRow(fx.db.sql, main);
  assertEquals(await fx.pass(), { connections: 1 });
  const row = only(await listConnectionChannels(fx.db.sql, main));
  const remote = only(fx.fake.subscriptions());
  assertEquals([row.status, row.channel_id], ["active", remote.id]);
  assertEquals(remote.clientState, row.secret);
  assertEquals(remote.resource, "me/events");
  assertEquals(remote.changeType, "created,updated,deleted");
  assertEquals(remote.notificationUrl, `${fx.server.url}/webhooks/microsoft`);
  assertEquals(remote.lifecycleNotificationUrl, `${fx.server.url}/webhooks/microsoft`);
  const validations = fx.fake.deliveries.filter((d) => d.kind === "validation");
  assertEquals(validations.map((d) => d.status), [200, 200]);
  assert(row.expires_at!.getTime() <= Date.now() + 4_230 * MINUTE);
  const after = await connectionRow(fx.db.sql, main);
  assertEquals(after.seq, before.seq + 1);
  // Graph rotated the refresh token; the pass held the lease, so the new one was stored.
  assert(after.refresh_token !== REFRESH_TOKEN, "rotated refresh token stored");
  assert(fx.fake.currentRefreshTokens().includes(after.refresh_token));
});

Deno.test("a change notification from Graph requests a sync", async () => {
  await using fx = await graphSubscriptions();
  const { main } = await subscribed(fx);
  const before = await connectionRow(fx.db.sql, main);
  fx.fake.putEvent("primary", { subject: "Planning" });
  await fx.fake.flushDeliveries();
  const notes = fx.fake.deliveries.filter((d) => d.kind === "notification");
  assertEquals(notes.map((d) => d.status), [202]);
  assertEquals((await connectionRow(fx.db.sql, main)).seq, before.seq + 1);
});

Deno.test("a due Graph subscription is renewed with PATCH", async () => {
  await using fx = await graphSubscriptions();
  const { main, row } = await subscribed(fx);
  const expires = fx.fake.subscriptions()[0].expirationDateTime;
  await dueNow(fx.db.sql, row.id);
  await clockPast(row.renewed_at!);
  await fx.pass();
  const renewed = only(await listConnectionChannels(fx.db.sql, main));
  assertEquals([renewed.id, renewed.channel_id], [row.id, row.channel_id]);
  assert(renewed.renewed_at!.getTime() > row.renewed_at!.getTime());
  assert(renewed.next_work_at!.getTime() > Date.now() + 60 * MINUTE);
  assert(fx.fake.subscriptions()[0].expirationDateTime !== expires);
});

Deno.test("reauthorizationRequired leads to a renewal of the Graph subscription", async () => {
  await using fx = await graphSubscriptions();
  const { main, row } = await subscribed(fx);
  await clockPast(row.renewed_at!);
  fx.fake.emitLifecycle(row.channel_id!, "reauthorizationRequired");
  await fx.fake.flushDeliveries();
  const marked = only(await listConnectionChannels(fx.db.sql, main));
  assert(marked.next_work_at!.getTime() <= Date.now(), "renewal due now");
  await fx.pass();
  const renewed = only(await listConnectionChannels(fx.db.sql, main));
  assert(renewed.renewed_at!.getTime() > row.renewed_at!.getTime());
});

Deno.test("a missed lifecycle event from Graph requests a full sync", async () => {
  await using fx = await graphSubscriptions();
  const { main, row } = await subscribed(fx);
  await fx.db.sql`update external_calendar_connections set sync_cursor = '{"position":1}'
    where id = ${main}`;
  const before = await connectionRow(fx.db.sql, main);
  fx.fake.emitLifecycle(row.channel_id!, "missed");
  await fx.fake.flushDeliveries();
  const after = await connectionRow(fx.db.sql, main);
  assertEquals([after.seq, after.full_seq], [before.seq + 1, before.seq + 1]);
});

Deno.test("subscriptionRemoved leads to a new Graph subscription and a sync", async () => {
  await using fx = await graphSubscriptions();
  const { main, row } = await subscribed(fx);
  const before = await connectionRow(fx.db.sql, main);
  fx.fake.emitLifecycle(row.channel_id!, "subscriptionRemoved");
  await fx.fake.flushDeliveries();
  assertEquals(only(await listConnectionChannels(fx.db.sql, main)).status, "removed");
  await fx.pass();
  const fresh = only(await listConnectionChannels(fx.db.sql, main));
  assertEquals(fresh.status, "active");
  assertEquals(fresh.channel_id, only(fx.fake.subscriptions()).id);
  assert(fresh.channel_id !== row.channel_id);
  assertEquals((await connectionRow(fx.db.sql, main)).seq, before.seq + 1);
});

Deno.test("a subscription Graph forgot is recreated on renewal (404)", async () => {
  await using fx = await graphSubscriptions();
  const { main, row } = await subscribed(fx);
  const response = await fetch(`${fx.fake.baseUrl}/subscriptions/${row.channel_id}`, {
    method: "DELETE",
    headers: { authorization: `Bearer ${fx.fake.issueAccessToken()}` },
  });
  assertEquals(response.status, 204);
  await response.body?.cancel();
  await dueNow(fx.db.sql, row.id);
  await fx.pass();
  const fresh = only(await listConnectionChannels(fx.db.sql, main));
  assertEquals(fresh.channel_id, only(fx.fake.subscriptions()).id);
  assert(fresh.id !== row.id);
});

Deno.test("a throttled Graph renewal waits at least Retry-After and is counted", async () => {
  await using fx = await graphSubscriptions();
  const { main, row } = await subscribed(fx);
  fx.fake.setFault({ kind: "status", status: 429, retryAfter: "900" }, {
    target: "push",
    times: 1,
  });
  await dueNow(fx.db.sql, row.id);
  await fx.pass();
  const failed = only(await listConnectionChannels(fx.db.sql, main));
  assertEquals([failed.status, failed.error_count], ["active", 1]);
  assert(failed.next_work_at!.getTime() >= Date.now() + 890_000);
  const counted = (await fx.server.metrics.syncFailures.get()).values.find((v) =>
    v.labels.provider === "microsoft" && v.labels.reason === "rate_limited"
  );
  assertEquals(counted?.value, 1);
});

Deno.test("connections remove deletes the Graph subscription first", async () => {
  await using fx = await graphSubscriptions();
  const { main } = await subscribed(fx);
  await removeConnection(fx, main);
  assertEquals((await listConnectionChannels(fx.db.sql, main)).length, 0);
});

Deno.test("no log line carries a Graph clientState", async () => {
  await using fx = await graphSubscriptions();
  const { main, row } = await subscribed(fx);
  fx.fake.putEvent("primary", { subject: "Planning" });
  fx.fake.emitLifecycle(row.channel_id!, "reauthorizationRequired");
  fx.fake.emitLifecycle(row.channel_id!, "missed");
  await fx.fake.flushDeliveries();
  await fx.pass(); // Renewed.
  fx.fake.emitLifecycle(row.channel_id!, "subscriptionRemoved");
  await fx.fake.flushDeliveries();
  await fx.pass(); // Subscribed anew.
  const fresh = only(await listConnectionChannels(fx.db.sql, main));
  assert(fresh.secret !== row.secret, "a new subscription has a new clientState");
  await removeConnection(fx, main);

  assert(fx.logLines.length > 0);
  for (const line of fx.logLines) {
    for (const secret of [row.secret, fresh.secret]) {
      assert(!line.includes(secret), `clientState in: ${line}`);
    }
  }
});

/** Runs `calsync connections remove` and waits for Graph to have no subscription left. */
async function removeConnection(fx: ChannelFixture<FakeMicrosoft>, connectionId: string) {
  await runCommand(fx.config, ["connections", "remove"], { connection: connectionId }, {
    out: () => {},
  });
  await waitFor(() => fx.fake.subscriptions().length === 0, { what: "subscription deleted" });
}
