import { assertEquals } from "../support/assert.ts";
import { createMigratedDatabase } from "../../testkit/scratch_database.ts";
import { createMetrics } from "../../src/metrics/metrics.ts";
import { pruneChangeFeed } from "../../src/maintenance/change_feed_retention.ts";
import { feedBounds } from "../../src/storage/change_feed.ts";
import { insertSubscriber, setSubscriberStatus } from "../../src/storage/subscribers.ts";
import { addBareConnection, insertEvents } from "../support/feed_fixture.ts";
import { allChanges } from "../support/feed_view.ts";

Deno.test("retention prunes old changes in batches but keeps what an active subscriber has not acknowledged", async () => {
  await using db = await createMigratedDatabase("feed_retention");
  const id = await addBareConnection(db.sql);
  await insertEvents(db.sql, id, 10);
  const subscriber = await insertSubscriber(db.sql, {
    url: "https://h.example.com/",
    connectionId: null,
    accountId: null,
    secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    fromSeq: 4,
  });
  const deps = {
    sql: db.sql,
    metrics: createMetrics(),
    retentionMs: 60_000,
    dbDeadlineMs: 5_000,
    batchSize: 3,
    now: () => Date.now() + 120_000,
  };
  const signal = new AbortController().signal;
  assertEquals(await pruneChangeFeed(deps, signal), 4);
  assertEquals((await allChanges(db.sql, 4)).map((c) => c.seq), [5, 6, 7, 8, 9, 10]);
  assertEquals((await feedBounds(db.sql)).prunedThrough, 4);
  // Not yet old enough: nothing goes, whatever was acknowledged.
  assertEquals(await pruneChangeFeed({ ...deps, now: () => Date.now() }, signal), 0);
  // A paused subscriber does not hold the feed.
  await setSubscriberStatus(db.sql, subscriber.id, "paused");
  assertEquals(await pruneChangeFeed(deps, signal), 6);
  assertEquals((await feedBounds(db.sql)).prunedThrough, 10);
});
