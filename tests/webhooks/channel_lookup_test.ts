import type { Sql } from "../../src/storage/client.ts";
import { createChannelLookup } from "../../src/webhooks/channel_lookup.ts";
import { assertEquals } from "../support/assert.ts";

// A stand-in pool answering the lookup's one statement with fixed rows, counting its calls.
function fakeSql(rows: Record<string, unknown>[]): { sql: Sql; calls: () => number } {
  let calls = 0;
  const sql = (() => {
    calls++;
    return Promise.resolve(rows);
  }) as unknown as Sql;
  return { sql, calls: () => calls };
}

Deno.test("ChannelLookup.cached() answers a found channel without the database until its TTL", async () => {
  let now = 1_000;
  const lookup = createChannelLookup({ ttlMs: 60_000, now: () => now });
  const row = { channel_id: "c1", connection_id: "k1", secret: "s", resource_id: "r1" };
  const db = fakeSql([row]);
  assertEquals(lookup.cached("google", "c1"), undefined);
  await lookup.find(db.sql, "google", ["c1"]);
  const identity = { channelId: "c1", connectionId: "k1", secret: "s", resourceId: "r1" };
  assertEquals(lookup.cached("google", "c1"), identity);
  // The provider is part of the key: a Graph subscription with the same id is another channel.
  assertEquals(lookup.cached("microsoft", "c1"), undefined);
  now += 60_000;
  assertEquals(lookup.cached("google", "c1"), undefined);
  assertEquals(db.calls(), 1);
});

Deno.test("ChannelLookup.cachedAll() answers only when every channel is cached", async () => {
  const lookup = createChannelLookup({ ttlMs: 60_000, now: () => 1_000 });
  const row = { channel_id: "c1", connection_id: "k1", secret: "s", resource_id: null };
  await lookup.find(fakeSql([row]).sql, "microsoft", ["c1"]);
  const identity = { channelId: "c1", connectionId: "k1", secret: "s", resourceId: null };
  assertEquals(lookup.cachedAll("microsoft", ["c1", "c1"]), new Map([["c1", identity]]));
  assertEquals(lookup.cachedAll("microsoft", ["c1", "c2"]), undefined);
});
