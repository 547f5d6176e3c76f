import { runCommand } from "../../src/cli/commands.ts";
import type { Sql } from "../../src/storage/client.ts";
import { listConnectionChannels } from "../../src/storage/webhook_channels.ts";
import { type FakeGoogle, startFakeGoogle } from "../../testkit/fake_google.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { dueNow, only } from "../support/channel_rows.ts";
import { type ChannelFixture, channelFixture } from "../support/channel_fixture.ts";

const REFRESH_TOKEN = "1//0g-refresh-token";
const MINUTE = 60_000;

/** Google watch channels pushing to our endpoints; no overlap, so renewals are due on time. */
function googleChannels(): Promise<ChannelFixture<FakeGoogle>> {
  return channelFixture("google", {
    fake: () =>
      startFakeGoogle({
        refreshTokens: [REFRESH_TOKEN],
        pushRetryBaseMs: 20,
        stoppedChannelGraceMs: 0,
      }),
    env: (google) => ({ GOOGLE_API_BASE_URL: google.baseUrl, GOOGLE_TOKEN_URL: google.tokenUrl }),
    publicUrl: (serverUrl) => serverUrl,
    refreshToken: REFRESH_TOKEN,
    deps: { overlapMs: 0 },
  });
}

/** Opens the connection's channel with one pass and lets Google's sync message arrive. */
async function openChannel(fx: ChannelFixture<FakeGoogle>, connectionId: string) {
  await fx.pass();
  await fx.fake.flushDeliveries();
  const channel = only(await listConnectionChannels(fx.db.sql, connectionId));
  assertEquals(channel.status, "active");
  return channel;
}

async function seq(sql: Sql, connectionId: string): Promise<number> {
  const [row] = await sql<{ seq: number }[]>`
    select sync_requested_seq::int as seq from external_calendar_connections
    where id = ${connectionId}`;
  return row.seq;
}

Deno.test("no Google channel is opened without CALSYNC_PUBLIC_URL", async () => {
  await using fx = await googleChannels();
  const main = await fx.connection("primary");
  assertEquals(await fx.pass({ publicUrl: null }), { connections: 0 });
  assertEquals((await listConnectionChannels(fx.db.sql, main)).length, 0);
});

Deno.test("a pass opens a Google channel and Google's sync message is acknowledged", async () => {
  await using fx = await googleChannels();
  const main = await fx.connection("primary");
  const before = await seq(fx.db.sql, main);
  assertEquals(await fx.pass(), { connections: 1 });
  const channel = only(await listConnectionChannels(fx.db.sql, main));
  const remote = only(fx.fake.channels());
  assertEquals(channel.status, "active");
  assertEquals(channel.channel_id, remote.id);
  assertEquals(channel.resource_id, remote.resourceId);
  assertEquals(remote.token, channel.secret);
  assertEquals(remote.address, `${fx.server.url}/webhooks/google`);
  assert(channel.expires_at!.getTime() > Date.now() + 6 * 24 * 60 * MINUTE);
  await fx.fake.flushDeliveries();
  const sync = fx.fake.deliveries.find((d) => d.state === "sync");
  assertEquals(sync?.status, 200);
  // Changes made before the channel existed must not wait for the next change.
  assertEquals(await seq(fx.db.sql, main), before + 1);
  const [lease] = await fx.db.sql`select lease_owner from external_calendar_connections
    where id = ${main}`;
  assertEquals(lease.lease_owner, null);
});

Deno.test("a change pushed by Google requests a sync", async () => {
  await using fx = await googleChannels();
  const main = await fx.connection("primary");
  await openChannel(fx, main);
  const before = await seq(fx.db.sql, main);
  fx.fake.putEvent("primary", { summary: "Standup" });
  await fx.fake.flushDeliveries();
  const change = fx.fake.deliveries.filter((d) => d.state === "exists");
  assertEquals(change.map((d) => d.status), [200]);
  assertEquals(await seq(fx.db.sql, main), before + 1);
  const [keys] = await fx.db.sql`select count(*)::int as n from webhook_dedupe_keys
    where connection_id = ${main}`;
  assertEquals(keys.n, 1);
});

Deno.test("a Google channel that is not due needs no work", async () => {
  await using fx = await googleChannels();
  await openChannel(fx, await fx.connection("primary"));
  assertEquals(await fx.pass(), { connections: 0 });
});

Deno.test("a Google channel's renewal opens a new channel, then stops the old one", async () => {
  await using fx = await googleChannels();
  const main = await fx.connection("primary");
  const channel = await openChannel(fx, main);
  const before = await seq(fx.db.sql, main);
  await dueNow(fx.db.sql, channel.id);
  await fx.pass();
  const rows = await listConnectionChannels(fx.db.sql, main);
  assertEquals(rows.map((row) => row.status).sort(), ["active", "stopping"]);
  const fresh = rows.find((row) => row.status === "active")!;
  assert(fresh.channel_id !== channel.channel_id);
  assert(fresh.secret !== channel.secret);
  assertEquals(fx.fake.channels().filter((c) => c.stoppedAt === null).length, 2);

  await fx.pass();
  assertEquals((await listConnectionChannels(fx.db.sql, main)).map((row) => row.id), [fresh.id]);
  const old = fx.fake.channels().find((c) => c.id === channel.channel_id);
  assert(old?.stoppedAt !== null, "old channel stopped at Google");
  // The old channel listened until the new one did: no sync needed for the handover.
  assertEquals(await seq(fx.db.sql, main), before);

  fx.fake.putEvent("primary", { summary: "Retro" });
  await fx.fake.flushDeliveries();
  const last = fx.fake.deliveries.at(-1)!;
  assertEquals([last.channelId, last.status], [fresh.channel_id, 200]);
  assertEquals(await seq(fx.db.sql, main), before + 1);
});

Deno.test("a failed Google watch backs off, is counted, and retries with a new id", async () => {
  await using fx = await googleChannels();
  const team = await fx.connection("team@example.com");
  fx.fake.setFault({ kind: "status", status: 503 }, { target: "push", times: 1 });
  await fx.pass();
  const failed = only(await listConnectionChannels(fx.db.sql, team));
  assertEquals([failed.status, failed.error_count], ["creating", 1]);
  const wait = failed.next_work_at!.getTime() - Date.now();
  assert(wait > 25_000 && wait <= 60_000, `backoff ${wait} ms`);
  const counted = (await fx.server.metrics.syncFailures.get()).values.find((v) =>
    v.labels.provider === "google" && v.labels.reason === "provider_unavailable"
  );
  assertEquals(counted?.value, 1);
  assert(fx.logLines.some((line) => line.includes('"operation":"create"')));

  assertEquals(await fx.pass(), { connections: 0 });
  await dueNow(fx.db.sql, failed.id);
  await fx.pass();
  const retried = only(await listConnectionChannels(fx.db.sql, team));
  assertEquals([retried.id, retried.status, retried.error_count], [failed.id, "active", 0]);
  assert(retried.channel_id !== failed.channel_id, "a retry uses a new channel id");
});

Deno.test("a Google calendar that cannot push is asked again a day later", async () => {
  await using fx = await googleChannels();
  const holidays = await fx.connection("en.usa#holiday@group.v.calendar.google.com");
  fx.fake.setPushSupported("en.usa#holiday@group.v.calendar.google.com", false);
  await fx.pass();
  const row = only(await listConnectionChannels(fx.db.sql, holidays));
  assertEquals(row.status, "creating");
  assert(row.next_work_at!.getTime() > Date.now() + 23 * 60 * MINUTE);
});

Deno.test("connections remove stops the Google channel first", async () => {
  await using fx = await googleChannels();
  const main = await fx.connection("primary");
  const channel = await openChannel(fx, main);
  await removeConnection(fx, main);
  const remote = fx.fake.channels().find((c) => c.id === channel.channel_id);
  assert(remote?.stoppedAt !== null, "channel stopped at Google");
  assertEquals((await listConnectionChannels(fx.db.sql, main)).length, 0);
});

Deno.test("no log line carries a Google channel token", async () => {
  await using fx = await googleChannels();
  const main = await fx.connection("primary");
  const first = await openChannel(fx, main);
  fx.fake.putEvent("primary", { summary: "Standup" });
  await dueNow(fx.db.sql, first.id);
  await fx.pass(); // Renewed,
  await fx.pass(); // and the old channel stopped.
  const team = await fx.connection("team@example.com");
  fx.fake.setFault({ kind: "status", status: 503 }, { target: "push", times: 1 });
  await fx.pass(); // The watch fails,
  await dueNow(fx.db.sql, only(await listConnectionChannels(fx.db.sql, team)).id);
  await fx.pass(); // and is retried.
  await removeConnection(fx, main);
  await fx.fake.flushDeliveries();

  const secrets = fx.fake.channels().map((c) => c.token!).filter(Boolean);
  assert(secrets.length >= 3);
  for (const line of fx.logLines) {
    for (const secret of secrets) assert(!line.includes(secret), `token in: ${line}`);
  }
});

/** Runs `calsync connections remove` for the connection and checks what it printed. */
async function removeConnection(fx: ChannelFixture<FakeGoogle>, connectionId: string) {
  const out: string[] = [];
  await runCommand(fx.config, ["connections", "remove"], { connection: connectionId }, {
    out: (text) => out.push(text),
  });
  assertEquals(out, [`Connection ${connectionId} removed with its events\n`]);
}

Deno.test("channel tokens are sealed at rest, sent in plaintext, and re-sealed by rotate-keys", async () => {
  const [oldKey, newKey] = [1, 2].map(() =>
    btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))))
  );
  await using fx = await channelFixture("google", {
    fake: () => startFakeGoogle({ refreshTokens: [REFRESH_TOKEN], pushRetryBaseMs: 20 }),
    env: (google) => ({ GOOGLE_API_BASE_URL: google.baseUrl, GOOGLE_TOKEN_URL: google.tokenUrl }),
    publicUrl: (serverUrl) => serverUrl,
    refreshToken: REFRESH_TOKEN,
    encryptionKey: oldKey,
  });
  const main = await fx.connection("primary");
  const channel = await openChannel(fx, main);
  const remote = only(fx.fake.channels());
  assert(channel.secret.startsWith("enc:v1:"), "stored sealed");
  assert(!channel.secret.includes(remote.token!), "the plaintext is not in the row");
  assertEquals(remote.token!.length, 43);

  // A push carrying the plaintext token is authenticated against the sealed row.
  const before = await seq(fx.db.sql, main);
  fx.fake.putEvent("primary", { summary: "Standup" });
  await fx.fake.flushDeliveries();
  assertEquals(fx.fake.deliveries.filter((d) => d.state === "exists").map((d) => d.status), [200]);
  assertEquals(await seq(fx.db.sql, main), before + 1);

  const out: string[] = [];
  const rotated = { ...fx.config, CALSYNC_ENCRYPTION_KEY: `${newKey},${oldKey}` };
  await runCommand(rotated, ["connections", "rotate-keys"], { json: true }, {
    out: (text) => out.push(text),
  });
  assertEquals(JSON.parse(out.join("")).channel_secrets_resealed, 1);
  assertEquals(JSON.parse(out.join("")).subscriber_secrets_resealed, 0);
  const [row] = await fx.db.sql<{ secret: string }[]>`
    select secret from webhook_channels where id = ${channel.id}`;
  assert(row.secret !== channel.secret && row.secret.startsWith("enc:v1:"), "re-sealed");
});
