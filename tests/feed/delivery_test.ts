import { assert, assertEquals, waitFor } from "../support/assert.ts";
import { createMigratedDatabase, type MigratedDatabase } from "../../testkit/scratch_database.ts";
import { createMetrics, type Metrics } from "../../src/metrics/metrics.ts";
import { type DeliveryLoop, refreshLag, startDelivery } from "../../src/feed/delivery_loop.ts";
import { generateSecret } from "../../src/feed/webhook_signature.ts";
import {
  findSubscriber,
  insertSubscriber,
  rotateSubscriberSecret,
  setSubscriberStatus,
} from "../../src/storage/subscribers.ts";
import { pruneChanges } from "../../src/storage/change_feed.ts";
import { addBareConnection, insertEvents } from "../support/feed_fixture.ts";
import { type Receiver, startReceiver } from "../../testkit/subscriber_receiver.ts";
import { counterValue } from "../support/sync_harness.ts";

function deliver(db: MigratedDatabase, metrics: Metrics, overrides = {}): DeliveryLoop {
  return startDelivery({
    sql: db.sql,
    metrics,
    replicaId: "test",
    concurrency: 4,
    timeoutMs: 5_000,
    backoffBaseMs: 10,
    backoffMaxMs: 50,
    maxFailingMs: 3 * 86_400_000,
    leaseMs: 30_000,
    pollMs: 50,
    ...overrides,
  });
}

async function subscribe(db: MigratedDatabase, receiver: Receiver, options: {
  connectionId?: string;
  fromSeq?: number;
} = {}) {
  const secret = generateSecret();
  receiver.secrets.push(secret);
  const row = await insertSubscriber(db.sql, {
    url: receiver.url,
    connectionId: options.connectionId ?? null,
    accountId: null,
    secret,
    fromSeq: options.fromSeq ?? null,
  });
  return { id: row.id, secret };
}

Deno.test("a subscriber gets the changes committed after it was added, in order, signed per Standard Webhooks", async () => {
  await using db = await createMigratedDatabase("delivery_order");
  const receiver = startReceiver();
  const metrics = createMetrics();
  const id = await addBareConnection(db.sql);
  await insertEvents(db.sql, id, 2, "before");
  const sub = await subscribe(db, receiver);
  const loop = deliver(db, metrics);
  try {
    await insertEvents(db.sql, id, 5, "after");
    await waitFor(() => receiver.received.length === 5, { what: "five deliveries" });
    assertEquals(receiver.received.map((r) => r.seq), [3, 4, 5, 6, 7]);
    assert(receiver.received.every((r) => r.verified[0]), "a signature did not verify");
    const body = JSON.parse(receiver.received[0].body);
    assertEquals([body.type, body.data.external_event_id], ["event.created", "after0"]);
    assertEquals(new Set(receiver.received.map((r) => r.id)).size, 5);
    await waitFor(async () => (await findSubscriber(db.sql, sub.id))?.acked_seq === 7);
    assertEquals(
      await counterValue(metrics, "calsync_subscriber_deliveries_total", { result: "success" }),
      5,
    );
    // A tampered secret must not verify: the check can fail.
    receiver.secrets.push(generateSecret());
    await insertEvents(db.sql, id, 1, "more");
    await waitFor(() => receiver.received.length === 6);
    assertEquals(receiver.received[5].verified, [true, false]);
  } finally {
    await loop.stop(2_000);
    await receiver.close();
  }
});

Deno.test("503, then 429 with Retry-After, then 200: the same message (id and body) again, order kept", async () => {
  await using db = await createMigratedDatabase("delivery_retry");
  const receiver = startReceiver();
  const metrics = createMetrics();
  const id = await addBareConnection(db.sql);
  const sub = await subscribe(db, receiver);
  receiver.answer({ status: 503 }, { status: 429, retryAfter: "1" });
  const loop = deliver(db, metrics);
  try {
    await insertEvents(db.sql, id, 3);
    // The receiver sees a request before its answer is recorded: wait for the record.
    await waitFor(
      async () => (await findSubscriber(db.sql, sub.id))?.last_error?.result === "rate_limited",
      { what: "the 429 recorded" },
    );
    const row = await findSubscriber(db.sql, sub.id);
    assertEquals(row?.last_error?.result, "rate_limited");
    assertEquals(row?.last_error?.retry_after_ms, 1_000);
    assert(
      row!.next_attempt_at.getTime() >= Date.parse(String(row!.last_error!.at)) + 1_000,
      "Retry-After was not honoured",
    );
    await waitFor(async () => (await findSubscriber(db.sql, sub.id))?.acked_seq === 3, {
      what: "the retry and the rest acknowledged",
    });
    assertEquals(receiver.received.length, 5);
    const [a, b, c, ...rest] = receiver.received;
    assertEquals([a.id, a.body], [b.id, b.body]);
    assertEquals([b.id, b.body], [c.id, c.body]);
    assertEquals([c, ...rest].map((r) => r.seq), [1, 2, 3]);
    assert(receiver.received.every((r) => r.verified[0]));
    for (const [result, n] of [["server_error", 1], ["rate_limited", 1], ["success", 3]] as const) {
      assertEquals(
        await counterValue(metrics, "calsync_subscriber_deliveries_total", { result }),
        n,
      );
    }
  } finally {
    await loop.stop(2_000);
    await receiver.close();
  }
});

Deno.test("a hung subscriber does not delay another; filters and --from select what is sent", async () => {
  await using db = await createMigratedDatabase("delivery_isolation");
  const slow = startReceiver();
  const fast = startReceiver();
  const release = Promise.withResolvers<void>();
  slow.answer({ status: 200, hold: release.promise });
  const one = await addBareConnection(db.sql);
  const two = await addBareConnection(db.sql);
  await subscribe(db, slow);
  await subscribe(db, fast, { connectionId: two, fromSeq: 0 });
  await insertEvents(db.sql, two, 1, "early");
  const loop = deliver(db, createMetrics());
  try {
    await insertEvents(db.sql, one, 3, "one");
    await insertEvents(db.sql, two, 3, "two");
    await waitFor(() => fast.received.length === 4, { what: "the fast subscriber's changes" });
    assertEquals(slow.received.length, 1, "the hung subscriber got more than its first message");
    assertEquals(
      fast.received.map((r) => JSON.parse(r.body).data.external_event_id),
      ["early0", "two0", "two1", "two2"],
    );
    release.resolve();
    await waitFor(() => slow.received.length === 7, { what: "the slow subscriber to catch up" });
    assertEquals(slow.received.map((r) => r.seq), [1, 2, 3, 4, 5, 6, 7]);
  } finally {
    release.resolve();
    await loop.stop(2_000);
    await slow.close();
    await fast.close();
  }
});

Deno.test("during a secret rotation both secrets sign; a subscriber failing too long is paused", async () => {
  await using db = await createMigratedDatabase("delivery_rotation");
  const receiver = startReceiver();
  const id = await addBareConnection(db.sql);
  const sub = await subscribe(db, receiver);
  const rotated = generateSecret();
  assert(await rotateSubscriberSecret(db.sql, sub.id, rotated, 60_000));
  const metrics = createMetrics();
  const loop = deliver(db, metrics, { maxFailingMs: 1 });
  try {
    await insertEvents(db.sql, id, 1);
    await waitFor(() => receiver.received.length === 1);
    const checker = [sub.secret, rotated];
    receiver.secrets.splice(0, receiver.secrets.length, ...checker);
    await insertEvents(db.sql, id, 1, "second");
    await waitFor(() => receiver.received.length === 2);
    assertEquals(receiver.received[1].verified, [true, true]);

    receiver.answer({ status: 500 }, { status: 500 }, { status: 500 });
    await insertEvents(db.sql, id, 1, "third");
    await waitFor(async () => (await findSubscriber(db.sql, sub.id))?.status === "paused", {
      what: "the subscriber to be paused",
    });
    const row = await findSubscriber(db.sql, sub.id);
    assertEquals(row?.acked_seq, 2, "a failed message was acknowledged");
  } finally {
    await loop.stop(2_000);
    await receiver.close();
  }
});

Deno.test("two replicas deliver to one subscriber: each change once, in order; the lag gauges follow", async () => {
  await using db = await createMigratedDatabase("delivery_replicas");
  const receiver = startReceiver();
  const metrics = createMetrics();
  const id = await addBareConnection(db.sql);
  const sub = await subscribe(db, receiver);
  const idle = startReceiver();
  const paused = await subscribe(db, idle);
  await setSubscriberStatus(db.sql, paused.id, "paused");
  await insertEvents(db.sql, id, 3, "queued");
  await refreshLag({ sql: db.sql, metrics });
  const gauge = async (name: string, subscriber: string) =>
    (await metrics.registry.getSingleMetric(name)?.get())?.values
      .find((v) => v.labels.subscriber === subscriber)?.value;
  assertEquals(await gauge("calsync_subscriber_lag_changes", sub.id), 3);
  assert((await gauge("calsync_subscriber_lag_seconds", sub.id))! >= 0);
  assertEquals(
    (await metrics.registry.getSingleMetric("calsync_subscribers_paused")?.get())
      ?.values[0].value,
    1,
  );
  const loops = [
    deliver(db, metrics, { replicaId: "a", maxMessages: 2 }),
    deliver(db, createMetrics(), { replicaId: "b", maxMessages: 2 }),
  ];
  try {
    await insertEvents(db.sql, id, 20, "live");
    await waitFor(async () => (await findSubscriber(db.sql, sub.id))?.acked_seq === 23, {
      what: "every change acknowledged",
    });
    assertEquals(receiver.received.map((r) => r.seq), Array.from({ length: 23 }, (_, i) => i + 1));
    await refreshLag({ sql: db.sql, metrics });
    assertEquals(await gauge("calsync_subscriber_lag_changes", sub.id), 0);
    assertEquals(await gauge("calsync_subscriber_lag_seconds", sub.id), 0);
  } finally {
    await Promise.all(loops.map((loop) => loop.stop(2_000)));
    await receiver.close();
    await idle.close();
  }
});

Deno.test("a subscriber resumed behind what retention pruned is paused again, telling why", async () => {
  await using db = await createMigratedDatabase("delivery_pruned");
  const receiver = startReceiver();
  const id = await addBareConnection(db.sql);
  const sub = await subscribe(db, receiver, { fromSeq: 0 });
  await setSubscriberStatus(db.sql, sub.id, "paused");
  await insertEvents(db.sql, id, 3);
  await pruneChanges(db.sql, {
    olderThan: new Date(Date.now() + 60_000),
    keepAfter: 3,
    batchSize: 10,
  });
  const loop = deliver(db, createMetrics());
  try {
    await setSubscriberStatus(db.sql, sub.id, "active");
    await waitFor(async () => (await findSubscriber(db.sql, sub.id))?.status === "paused", {
      what: "the subscriber paused again",
    });
    const row = await findSubscriber(db.sql, sub.id);
    assert(row?.paused_reason?.includes("pruned"), `reason: ${row?.paused_reason}`);
    assertEquals(receiver.received.length, 0, "changes after a gap were delivered");
  } finally {
    await loop.stop(2_000);
    await receiver.close();
  }
});

Deno.test("a delivery cut short by shutdown is not counted as the subscriber's failure", async () => {
  await using db = await createMigratedDatabase("delivery_shutdown");
  const receiver = startReceiver();
  const release = Promise.withResolvers<void>();
  receiver.answer({ status: 200, hold: release.promise });
  const id = await addBareConnection(db.sql);
  const sub = await subscribe(db, receiver);
  const loop = deliver(db, createMetrics());
  try {
    await insertEvents(db.sql, id, 1);
    await waitFor(() => receiver.received.length === 1, { what: "the held attempt" });
  } finally {
    await loop.stop(2_000);
    release.resolve();
    await receiver.close();
  }
  const row = await findSubscriber(db.sql, sub.id);
  assertEquals([row?.attempts, row?.failing_since, row?.acked_seq], [0, null, 0]);
  const [lease] = await db.sql`select lease_owner from change_subscribers where id = ${sub.id}`;
  assertEquals(lease.lease_owner, null);
});
