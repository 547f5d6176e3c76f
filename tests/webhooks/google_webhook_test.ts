import { openSql, type Sql } from "../../src/storage/client.ts";
import { holdConnectionLock } from "../support/row_lock.ts";
import { insertChannel } from "../../src/storage/webhook_channels.ts";
import type { Metrics } from "../../src/metrics/metrics.ts";
import { createDeliverer } from "../../testkit/fake_delivery.ts";
import { assert, assertEquals, waitFor } from "../support/assert.ts";
import { serveApp } from "../support/serve_app.ts";
import { serveWebhooks } from "../support/webhook_server.ts";
import { unreachableDatabase } from "../support/unreachable_database.ts";
import { type WebhookFixture, webhookFixture } from "../support/webhook_fixture.ts";

const SECRET = "gT3b8WmZr0qk5Yc1XvJ2nQ7sLdP4eHaU9fKoBiCyN6w";
const RESOURCE_ID = "ret08u3rv24htgh289g";

/** The webhook endpoints and one Google connection with an active channel. */
type GoogleWebhook = WebhookFixture & { connectionId: string; channelId: string };

async function googleWebhook(): Promise<GoogleWebhook> {
  await using stack = new AsyncDisposableStack();
  const fx = stack.use(await webhookFixture("google"));
  const { id, channelId } = await fx.listeningConnection({
    calendar: "my_calendar@gmail.com",
    refreshToken: "1//refresh",
    secret: SECRET,
    resourceId: RESOURCE_ID,
  });
  stack.move();
  return { ...fx, connectionId: id, channelId };
}

/** The headers of the push guide's example notification (wire formats §2.2). */
function googleHeaders(channelId: string, overrides: Record<string, string | null> = {}) {
  const headers: Record<string, string | null> = {
    "content-type": "application/json; utf-8",
    "user-agent": "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)",
    "x-goog-channel-id": channelId,
    "x-goog-channel-token": SECRET,
    "x-goog-channel-expiration": "Tue, 19 Nov 2013 01:13:52 GMT",
    "x-goog-resource-id": RESOURCE_ID,
    "x-goog-resource-uri":
      "https://www.googleapis.com/calendar/v3/calendars/my_calendar@gmail.com/events",
    "x-goog-resource-state": "exists",
    "x-goog-message-number": "10",
    ...overrides,
  };
  return Object.fromEntries(
    Object.entries(headers).filter((entry): entry is [string, string] => entry[1] !== null),
  );
}

async function post(
  url: string,
  headers: Record<string, string>,
  init: { method?: string; body?: string } = {},
) {
  const response = await fetch(`${url}/webhooks/google`, {
    method: init.method ?? "POST",
    headers,
    body: init.body ?? (init.method === "GET" ? undefined : ""),
  });
  const text = await response.text();
  return { status: response.status, text, json: text ? JSON.parse(text) : null };
}

async function connectionState(sql: Sql, connectionId: string) {
  const [row] = await sql<{ seq: number; sync_needed: boolean; keys: number }[]>`
    select c.sync_requested_seq::int as seq, c.sync_needed,
      (select count(*)::int from webhook_dedupe_keys k where k.connection_id = c.id) as keys
    from external_calendar_connections c where c.id = ${connectionId}`;
  return row;
}

function counter(metrics: Metrics, result: string): Promise<number> {
  return metrics.webhookNotifications.get().then((data) =>
    data.values.filter((v) => v.labels.provider === "google" && v.labels.result === result)
      .reduce((sum, v) => sum + v.value, 0)
  );
}

/** A loopback port that accepts connections and never answers, with a pool on it. */
async function hangingDatabase() {
  await using stack = new AsyncDisposableStack();
  const socket = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of socket) held.push(conn);
  })();
  stack.defer(async () => {
    socket.close();
    for (const conn of held) conn.close();
    await accepting.catch(() => {});
  });
  const sql = openSql(`postgres://postgres@127.0.0.1:${socket.addr.port}/x`, {
    max: 1,
    // Far beyond the handler's deadline: only the deadline can end a request early.
    connectTimeoutMs: 600_000,
  });
  stack.defer(() => sql.end({ timeout: 0 }));
  const owned = stack.move();
  return { sql, [Symbol.asyncDispose]: () => owned.disposeAsync() };
}

Deno.test("a Google sync message is acknowledged and requests no sync", async () => {
  await using fx = await googleWebhook();
  const before = await connectionState(fx.db.sql, fx.connectionId);
  const response = await post(
    fx.server.url,
    googleHeaders(fx.channelId, { "x-goog-resource-state": "sync", "x-goog-message-number": "1" }),
  );
  assertEquals(response.status, 200);
  assertEquals(await connectionState(fx.db.sql, fx.connectionId), before);
});

Deno.test("a Google change records one dedupe key, bumps the counter and notifies", async () => {
  await using fx = await googleWebhook();
  const before = await connectionState(fx.db.sql, fx.connectionId);
  await fx.db.sql`update external_calendar_connections set sync_needed = false
    where id = ${fx.connectionId}`;
  const response = await post(fx.server.url, googleHeaders(fx.channelId));
  assertEquals(response.status, 200);
  assertEquals(response.json, { result: "accepted" });
  const after = await connectionState(fx.db.sql, fx.connectionId);
  assertEquals(after, { seq: before.seq + 1, sync_needed: true, keys: 1 });
  await waitFor(() => fx.syncs.includes(fx.connectionId), { what: "NOTIFY" });
});

Deno.test("a delivery whose connection a sync holds waits alone; other connections' are answered meanwhile", async () => {
  await using fx = await googleWebhook();
  const other = await fx.listeningConnection({
    calendar: "other@gmail.com",
    refreshToken: "1//other",
    secret: SECRET,
    resourceId: RESOURCE_ID,
  });
  const before = await connectionState(fx.db.sql, fx.connectionId);
  // A sync's write transaction holds the connection's row until it commits.
  const lock = await holdConnectionLock(fx.db.sql, fx.connectionId);
  const busy = post(fx.server.url, googleHeaders(fx.channelId, { "x-goog-message-number": "11" }));
  const free = await post(
    fx.server.url,
    googleHeaders(other.channelId, { "x-goog-message-number": "12" }),
  );
  assertEquals([free.status, free.json], [200, { result: "accepted" }]);
  await lock.release();
  const answered = await busy;
  assertEquals([answered.status, answered.json], [200, { result: "accepted" }]);
  const after = await connectionState(fx.db.sql, fx.connectionId);
  assertEquals(after, { seq: before.seq + 1, sync_needed: true, keys: 1 });
});

Deno.test("a duplicate Google delivery gets 200 and changes nothing", async () => {
  await using fx = await googleWebhook();
  assertEquals((await post(fx.server.url, googleHeaders(fx.channelId))).status, 200);
  const before = await connectionState(fx.db.sql, fx.connectionId);
  const response = await post(fx.server.url, googleHeaders(fx.channelId));
  assertEquals(response.status, 200);
  assertEquals(response.json, { result: "duplicate" });
  assertEquals(await connectionState(fx.db.sql, fx.connectionId), before);
  assertEquals(await counter(fx.server.metrics, "duplicate"), 1);
});

Deno.test("the same Google notification from 40 concurrent clients bumps once", async () => {
  await using fx = await googleWebhook();
  const before = await connectionState(fx.db.sql, fx.connectionId);
  const headers = googleHeaders(fx.channelId, { "x-goog-message-number": "257" });
  const responses = await Promise.all(
    Array.from({ length: 40 }, () => post(fx.server.url, headers)),
  );
  assertEquals(responses.map((r) => r.status), responses.map(() => 200));
  const results = responses.map((r) => r.json.result);
  assertEquals(results.filter((r) => r === "accepted").length, 1);
  assertEquals(results.filter((r) => r === "duplicate").length, 39);
  const after = await connectionState(fx.db.sql, fx.connectionId);
  assertEquals(after.seq, before.seq + 1);
  assertEquals(after.keys, before.keys + 1);
});

Deno.test("a forged or missing Google channel token is rejected with no side effects", async () => {
  await using fx = await googleWebhook();
  const before = await connectionState(fx.db.sql, fx.connectionId);
  const forged = await post(
    fx.server.url,
    googleHeaders(fx.channelId, {
      "x-goog-channel-token": "forged-token-value",
      "x-goog-message-number": "999",
    }),
  );
  assertEquals(forged.status, 403);
  assertEquals(forged.json.error, "forbidden");
  const missing = await post(
    fx.server.url,
    googleHeaders(fx.channelId, { "x-goog-channel-token": null, "x-goog-message-number": "998" }),
  );
  assertEquals(missing.status, 403);
  const wrongResource = await post(
    fx.server.url,
    googleHeaders(fx.channelId, { "x-goog-resource-id": "other", "x-goog-message-number": "997" }),
  );
  assertEquals(wrongResource.status, 403);
  assertEquals(await connectionState(fx.db.sql, fx.connectionId), before);
  assertEquals(await counter(fx.server.metrics, "rejected"), 3);
});

Deno.test("a notification for an unknown Google channel is acknowledged, ignored and counted", async () => {
  await using fx = await googleWebhook();
  const response = await post(fx.server.url, googleHeaders(crypto.randomUUID()));
  assertEquals(response.status, 200);
  assertEquals(response.json, { result: "ignored" });
  assertEquals(await counter(fx.server.metrics, "ignored"), 1);
});

Deno.test("bad input to the Google endpoint gets a clear 4xx", async () => {
  await using fx = await googleWebhook();
  const { url } = fx.server;
  const missing = await post(
    url,
    googleHeaders(fx.channelId, { "x-goog-message-number": null, "x-goog-resource-state": null }),
  );
  assertEquals(missing.status, 400);
  // RFC 9457 problem details, plus the stable `error` and `message` callers match on.
  assertEquals(missing.json, {
    type: "about:blank",
    title: "Bad Request",
    status: 400,
    detail: "Missing required headers: x-goog-message-number, x-goog-resource-state",
    error: "missing_header",
    message: "Missing required headers: x-goog-message-number, x-goog-resource-state",
  });
  const badNumber = await post(
    url,
    googleHeaders(fx.channelId, { "x-goog-message-number": "ten" }),
  );
  assertEquals(badNumber.status, 400);
  const badState = await post(url, googleHeaders(fx.channelId, { "x-goog-resource-state": "add" }));
  assertEquals(badState.status, 400);
  const badId = await post(url, googleHeaders("x".repeat(65)));
  assertEquals(badId.status, 400);
  const method = await post(url, googleHeaders(fx.channelId), { method: "PUT" });
  assertEquals(method.status, 405);
  const get = await post(url, googleHeaders(fx.channelId), { method: "GET" });
  assertEquals(get.status, 405);
  const type = await post(
    url,
    googleHeaders(fx.channelId, { "content-type": "application/x-www-form-urlencoded" }),
    { body: "a=b" },
  );
  assertEquals(type.status, 415);
  const big = await post(url, googleHeaders(fx.channelId), { body: "x".repeat(10_000) });
  assertEquals(big.status, 413);
});

Deno.test("database down: Google gets 503 and nothing is recorded; the retry succeeds", async () => {
  await using fx = await googleWebhook();
  await using dead = unreachableDatabase();
  const { url } = fx.server;
  const other = crypto.randomUUID();
  await insertChannel(fx.db.sql, {
    connectionId: fx.connectionId,
    provider: "google",
    channelId: other,
    secret: SECRET,
  });
  // The sync handshake caches one channel (so the recording statement fails), not the other
  // (so its lookup fails).
  const sync = { "x-goog-resource-state": "sync", "x-goog-message-number": "1" };
  assertEquals((await post(url, googleHeaders(fx.channelId, sync))).status, 200);
  const before = await connectionState(fx.db.sql, fx.connectionId);
  fx.useDatabase(dead.sql);
  const cached = await post(url, googleHeaders(fx.channelId, { "x-goog-message-number": "3001" }));
  const cold = await post(
    url,
    googleHeaders(other, { "x-goog-message-number": "3002", "x-goog-resource-id": "r" }),
  );
  assertEquals([cached.status, cold.status], [503, 503]);
  assertEquals(cached.json.error, "unavailable");
  fx.useDatabase(null);
  const notOpen = await post(url, googleHeaders(fx.channelId));
  assertEquals(notOpen.status, 503);
  assertEquals(await connectionState(fx.db.sql, fx.connectionId), before);
  assertEquals(await counter(fx.server.metrics, "unavailable"), 3);

  fx.useDatabase(fx.db.sql);
  const retried = await post(url, googleHeaders(fx.channelId, { "x-goog-message-number": "3001" }));
  assertEquals(retried.json, { result: "accepted" });
  const after = await connectionState(fx.db.sql, fx.connectionId);
  assertEquals(after.seq, before.seq + 1);
  assertEquals(after.keys, before.keys + 1);
});

Deno.test("a database that hangs gets Google a 503 within the response deadline", async () => {
  await using hanging = await hangingDatabase();
  await using server = await serveWebhooks(() => hanging.sql, { deadlineMs: 300 });
  // The database never answers, so any answer at all is the deadline's doing.
  const response = await post(
    server.url,
    googleHeaders(crypto.randomUUID(), { "x-goog-message-number": "4001" }),
  );
  assertEquals(response.status, 503);
});

Deno.test("a notification Google retries while the endpoint is down is processed once after recovery", async () => {
  await using fx = await googleWebhook();
  const before = await connectionState(fx.db.sql, fx.connectionId);
  // Reserve a port, then leave it closed until an attempt has failed against it.
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = probe.addr.port;
  probe.close();
  await using owned = new AsyncDisposableStack();
  const deliverer = owned.adopt(createDeliverer(), (d) => d.close());
  const attempts: (number | string)[] = [];
  deliverer.send({
    url: `http://127.0.0.1:${port}/webhooks/google`,
    headers: googleHeaders(fx.channelId, { "x-goog-message-number": "5001" }),
    body: "",
    onAttempt: (_attempt, outcome) => attempts.push(outcome),
  }, {
    maxAttempts: 8,
    baseDelayMs: 50,
    timeoutMs: 2_000,
    isSuccess: (status) => [102, 200, 201, 202, 204].includes(status),
    isRetryable: (outcome) => typeof outcome === "string" || outcome >= 500,
  });
  await waitFor(() => attempts.length > 0, { what: "the first delivery attempt" });
  owned.adopt(await serveApp(fx.server.app, port), (late) => late.close());
  await deliverer.flush();
  assert(attempts[0] === "error", `first attempt ${attempts[0]}`);
  assertEquals(attempts.at(-1), 200);
  const after = await connectionState(fx.db.sql, fx.connectionId);
  assertEquals(after.seq, before.seq + 1);
  assertEquals(after.keys, before.keys + 1);
});

Deno.test("no log line carries a Google channel token, genuine or forged", async () => {
  await using fx = await googleWebhook();
  await using dead = unreachableDatabase();
  const { url } = fx.server;
  const forged = { "x-goog-channel-token": "forged-token-value", "x-goog-message-number": "999" };
  // One delivery of each outcome: accepted, duplicate, rejected, ignored, malformed.
  const deliveries: Record<string, string>[] = [{}, {}, forged, { "x-goog-message-number": "ten" }];
  for (const headers of deliveries) {
    await post(url, googleHeaders(fx.channelId, headers));
  }
  await post(url, googleHeaders(crypto.randomUUID()));
  fx.useDatabase(dead.sql);
  assertEquals(
    (await post(url, googleHeaders(fx.channelId, { "x-goog-message-number": "11" }))).status,
    503,
  );

  assert(fx.logLines.length > 0, "expected log lines");
  for (const line of fx.logLines) {
    assert(!line.includes(SECRET), `secret in log line: ${line}`);
    assert(!line.includes("forged-token-value"), `forged token in log line: ${line}`);
  }
  assert(fx.logLines.some((line) => line.includes("channel token does not match")));
  assert(fx.logLines.some((line) => line.includes("database unavailable")));
});
