/** Google deliveries recorded together: one outcome each, one sync request per connection. */
import { DatabaseDeadlineError } from "../../src/core/errors.ts";
import { holdConnectionLock } from "../support/row_lock.ts";
import {
  recordGoogleNotification,
  recordGoogleNotifications,
} from "../../src/storage/webhook_dedupe_keys.ts";
import { SYNC_CHANNEL } from "../../src/storage/connections.ts";
import { createMigratedDatabase } from "../../testkit/scratch_database.ts";
import { insertConnections } from "../support/connection_rows.ts";
import { addLiveChannel } from "../support/provider_kits.ts";
import { assertEquals, assertRejects, waitFor } from "../support/assert.ts";
import type { Sql } from "../../src/storage/client.ts";

async function requests(sql: Sql) {
  const rows = await sql<{ id: string; seq: number; needed: boolean }[]>`
    select id, sync_requested_seq::int as seq, sync_needed as needed
    from external_calendar_connections order by external_calendar_id`;
  return rows;
}

Deno.test("recordGoogleNotifications() answers each record in order and requests one sync per connection", async () => {
  await using db = await createMigratedDatabase("record_google_batch");
  await insertConnections(db.sql, "google", 3);
  const [one, two, idle] = await requests(db.sql);
  const first = await addLiveChannel(db.sql, one.id, "google");
  const second = await addLiveChannel(db.sql, one.id, "google");
  const other = await addLiveChannel(db.sql, two.id, "google");
  await addLiveChannel(db.sql, idle.id, "google");
  await db.sql`update external_calendar_connections set sync_needed = false`;
  const listened: string[] = [];
  const listener = await db.sql.listen(SYNC_CHANNEL, (payload) => listened.push(payload));
  const before = await requests(db.sql);
  const outcomes = await recordGoogleNotifications(db.sql, [
    { key: "k-1", channelId: first },
    { key: "k-2", channelId: second },
    { key: "k-1", channelId: first },
    { key: "k-3", channelId: "unknown" },
    { key: "k-4", channelId: other },
  ]);
  assertEquals(outcomes, ["accepted", "accepted", "duplicate", "unknown_channel", "accepted"]);
  const after = await requests(db.sql);
  assertEquals(after.map((row, i) => row.seq - before[i].seq), [1, 1, 0]);
  assertEquals(after.map((row) => row.needed), [true, true, false]);
  // A key already recorded is a duplicate in a later batch too.
  assertEquals(
    await recordGoogleNotifications(db.sql, [{ key: "k-4", channelId: other }]),
    ["duplicate"],
  );
  await waitFor(() => listened.length >= 2, { what: "both idle connections notified" });
  await listener.unlisten();
  assertEquals(listened.sort(), [one.id, two.id].sort());
});

Deno.test("recordGoogleNotifications() writes nothing when it starts after its notAfter", async () => {
  await using db = await createMigratedDatabase("record_google_late");
  await insertConnections(db.sql, "google", 1);
  const [row] = await requests(db.sql);
  const channel = await addLiveChannel(db.sql, row.id, "google");
  await assertRejects(
    () =>
      recordGoogleNotifications(db.sql, [{ key: "k", channelId: channel }], {
        notAfter: new Date(Date.now() - 60_000),
      }),
    DatabaseDeadlineError,
  );
  const [keys] = await db.sql<{ n: number }[]>`select count(*)::int as n from webhook_dedupe_keys`;
  assertEquals(keys.n, 0);
  assertEquals((await requests(db.sql))[0].seq, row.seq);
});

Deno.test("recordGoogleNotifications() defers, writing nothing, records whose connection another transaction holds", async () => {
  await using db = await createMigratedDatabase("record_google_deferred");
  await insertConnections(db.sql, "google", 2);
  const [held, free] = await requests(db.sql);
  const heldChannel = await addLiveChannel(db.sql, held.id, "google");
  const freeChannel = await addLiveChannel(db.sql, free.id, "google");
  const lock = await holdConnectionLock(db.sql, held.id);
  const outcomes = await recordGoogleNotifications(db.sql, [
    { key: "k-held", channelId: heldChannel },
    { key: "k-free", channelId: freeChannel },
  ]);
  assertEquals(outcomes, ["deferred", "accepted"]);
  const keys = await db.sql<{ key: string }[]>`select key from webhook_dedupe_keys order by key`;
  assertEquals(keys.map((row) => row.key), ["k-free"]);
  await lock.release();
  assertEquals(
    await recordGoogleNotification(db.sql, { key: "k-held", channelId: heldChannel }),
    "accepted",
  );
  const after = await requests(db.sql);
  assertEquals(after.map((row, i) => row.seq - [held, free][i].seq), [1, 1]);
});
