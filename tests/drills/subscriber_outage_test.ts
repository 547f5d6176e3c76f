import { assertEquals } from "../support/assert.ts";
import { checkDeliveries, checkReplayEqualsMirror } from "../../drills/subscriber_outage/checks.ts";
import {
  renderChecks,
  runSubscriberOutage,
} from "../../drills/subscriber_outage/run_subscriber_outage.ts";
import type { Received } from "../../testkit/subscriber_receiver.ts";

const SERVER = Deno.env.get("TEST_DATABASE_URL") ?? "postgres://postgres@127.0.0.1:5432/postgres";

function attempt(seq: number, status: number, at: number, id = `msg_${seq}`): Received {
  return {
    seq,
    status,
    at,
    id,
    timestamp: "0",
    signature: "v1,x",
    body: `{"seq":${seq}}`,
    verified: [true],
  };
}

Deno.test("subscriber outage checks pass on a clean record and fail on each defect", () => {
  const clean = [
    attempt(1, 503, 0),
    attempt(1, 429, 100),
    attempt(1, 200, 2_200),
    attempt(2, 200, 2_300),
  ];
  assertEquals(checkDeliveries(clean, [1, 2], 2_000).map((c) => c.pass), [
    true,
    true,
    true,
    true,
    true,
  ]);
  const failing = (record: Received[], expected = [1, 2]) =>
    checkDeliveries(record, expected, 2_000).filter((c) => !c.pass).map((c) => c.name);
  assertEquals(failing(clean.slice(0, 3)), ["every change delivered"]);
  assertEquals(failing([clean[0], attempt(2, 200, 50), ...clean.slice(1)]), ["in sequence order"]);
  assertEquals(failing([clean[0], attempt(1, 429, 100, "other"), ...clean.slice(2)]), [
    "duplicates only with the same webhook-id",
  ]);
  assertEquals(failing([clean[0], clean[1], attempt(1, 200, 150), clean[3]]), [
    "503 retried, Retry-After honoured",
  ]);
  assertEquals(failing([{ ...clean[0], verified: [false] }, ...clean.slice(1)]), [
    "signatures verify (standardwebhooks)",
  ]);
});

Deno.test("the subscriber outage drill passes against the real daemon", async () => {
  const checks = await runSubscriberOutage(SERVER, () => {});
  assertEquals(checks.filter((c) => !c.pass), [], renderChecks(checks));
});

Deno.test("the replay check fails when a change was never announced or a deletion was lost", () => {
  const message = (seq: number, type: string, id: string, status = 200): Received => ({
    ...attempt(seq, status, seq * 100),
    body: JSON.stringify({
      type,
      data: { seq, type, connection_id: "c", external_event_id: id, data: { title: id } },
    }),
  });
  const feed = [
    message(1, "event.created", "a"),
    message(2, "event.created", "b", 503),
    message(2, "event.created", "b"),
    message(3, "event.deleted", "a"),
  ];
  assertEquals(checkReplayEqualsMirror(feed, ["c/b"]).pass, true);
  // The outbox lost b's creation: the subscriber never hears of it.
  assertEquals(checkReplayEqualsMirror(feed, ["c/b", "c/z"]).pass, false);
  // A lost deletion leaves an occurrence the mirror no longer has.
  assertEquals(checkReplayEqualsMirror(feed.slice(0, 3), ["c/b"]).pass, false);
});
