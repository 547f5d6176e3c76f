import { openSql, type Sql } from "../../src/storage/client.ts";
import { insertConnection, SYNC_CHANNEL } from "../../src/storage/connections.ts";
import { insertProvider } from "../../src/storage/calendar_providers.ts";
import { insertChannel } from "../../src/storage/webhook_channels.ts";
import { createApp } from "../../src/http/app.ts";
import { setupLogging, teardownLogging } from "../../src/log/setup.ts";
import { createMetrics } from "../../src/metrics/metrics.ts";
import { mountWebhooks } from "../../src/webhooks/routes.ts";
import { createDeliverer } from "../../testkit/fake_delivery.ts";
import { assert, assertEquals, waitFor } from "../support/assert.ts";
import { createMigratedDatabase } from "../support/migrated_database.ts";
import { serveApp } from "../support/serve_app.ts";

const SECRET = "gT3b8WmZr0qk5Yc1XvJ2nQ7sLdP4eHaU9fKoBiCyN6w";
const RESOURCE_ID = "ret08u3rv24htgh289g";

function webhookApp(sql: () => Sql | null, deadlineMs = 2_500) {
  const metrics = createMetrics();
  const app = createApp({
    metrics,
    readiness: () => Promise.resolve({ ready: true }),
    maxBodyBytes: 1_048_576,
    routes: (app) => mountWebhooks(app, { sql, metrics, deadlineMs }),
  });
  return { app, metrics };
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

function counter(metrics: ReturnType<typeof createMetrics>, result: string): Promise<number> {
  return metrics.webhookNotifications.get().then((data) =>
    data.values.filter((v) => v.labels.provider === "google" && v.labels.result === result)
      .reduce((sum, v) => sum + v.value, 0)
  );
}

Deno.test("Google push notifications", async (t) => {
  const logLines: string[] = [];
  await setupLogging("debug", (line) => logLines.push(line));
  const db = await createMigratedDatabase("webhook_google");
  const provider = await insertProvider(db.sql, {
    kind: "google",
    name: "google",
    allowlisted: true,
  });
  const { id: connectionId } = await insertConnection(db.sql, {
    providerId: provider.id,
    externalCalendarId: "my_calendar@gmail.com",
    refreshToken: "1//refresh",
    accountLabel: null,
  });
  const channelId = crypto.randomUUID();
  const channel = await insertChannel(db.sql, {
    connectionId,
    provider: "google",
    channelId,
    secret: SECRET,
  });
  await db.sql`update webhook_channels set resource_id = ${RESOURCE_ID}, status = 'active'
    where id = ${channel.id}`;
  const notified: string[] = [];
  const listener = await db.sql.listen(SYNC_CHANNEL, (payload) => notified.push(payload));

  let current: Sql | null = db.sql;
  const { app, metrics } = webhookApp(() => current);
  const server = await serveApp(app);
  const dead = openSql("postgres://postgres@127.0.0.1:9/nothing", {
    max: 1,
    connectTimeoutMs: 500,
  });

  try {
    await t.step("a sync message is acknowledged and requests no sync", async () => {
      const before = await connectionState(db.sql, connectionId);
      const response = await post(
        server.url,
        googleHeaders(channelId, {
          "x-goog-resource-state": "sync",
          "x-goog-message-number": "1",
        }),
      );
      assertEquals(response.status, 200);
      assertEquals(await connectionState(db.sql, connectionId), before);
    });

    await t.step("a change records one dedupe key, bumps the counter and notifies", async () => {
      const before = await connectionState(db.sql, connectionId);
      await db.sql`update external_calendar_connections set sync_needed = false
        where id = ${connectionId}`;
      const response = await post(server.url, googleHeaders(channelId));
      assertEquals(response.status, 200);
      assertEquals(response.json, { result: "accepted" });
      const after = await connectionState(db.sql, connectionId);
      assertEquals(after, { seq: before.seq + 1, sync_needed: true, keys: 1 });
      await waitFor(() => notified.includes(connectionId), { what: "NOTIFY" });
    });

    await t.step("a duplicate delivery gets 200 and changes nothing", async () => {
      const before = await connectionState(db.sql, connectionId);
      const response = await post(server.url, googleHeaders(channelId));
      assertEquals(response.status, 200);
      assertEquals(response.json, { result: "duplicate" });
      assertEquals(await connectionState(db.sql, connectionId), before);
      assertEquals(await counter(metrics, "duplicate"), 1);
    });

    await t.step("the same notification from 40 concurrent clients bumps once", async () => {
      const before = await connectionState(db.sql, connectionId);
      const headers = googleHeaders(channelId, { "x-goog-message-number": "257" });
      const responses = await Promise.all(
        Array.from({ length: 40 }, () => post(server.url, headers)),
      );
      assertEquals(responses.map((r) => r.status), responses.map(() => 200));
      const results = responses.map((r) => r.json.result);
      assertEquals(results.filter((r) => r === "accepted").length, 1);
      assertEquals(results.filter((r) => r === "duplicate").length, 39);
      const after = await connectionState(db.sql, connectionId);
      assertEquals(after.seq, before.seq + 1);
      assertEquals(after.keys, before.keys + 1);
    });

    await t.step("a forged or missing token is rejected with no side effects", async () => {
      const before = await connectionState(db.sql, connectionId);
      const forged = await post(
        server.url,
        googleHeaders(channelId, {
          "x-goog-channel-token": "forged-token-value",
          "x-goog-message-number": "999",
        }),
      );
      assertEquals(forged.status, 403);
      assertEquals(forged.json.error, "forbidden");
      const missing = await post(
        server.url,
        googleHeaders(channelId, { "x-goog-channel-token": null, "x-goog-message-number": "998" }),
      );
      assertEquals(missing.status, 403);
      const wrongResource = await post(
        server.url,
        googleHeaders(channelId, { "x-goog-resource-id": "other", "x-goog-message-number": "997" }),
      );
      assertEquals(wrongResource.status, 403);
      assertEquals(await connectionState(db.sql, connectionId), before);
      assertEquals(await counter(metrics, "rejected"), 3);
    });

    await t.step("an unknown channel is acknowledged, ignored and counted", async () => {
      const response = await post(server.url, googleHeaders(crypto.randomUUID()));
      assertEquals(response.status, 200);
      assertEquals(response.json, { result: "ignored" });
      assertEquals(await counter(metrics, "ignored"), 1);
    });

    await t.step("bad input gets a clear 4xx", async () => {
      const missing = await post(
        server.url,
        googleHeaders(channelId, {
          "x-goog-message-number": null,
          "x-goog-resource-state": null,
        }),
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
        server.url,
        googleHeaders(channelId, { "x-goog-message-number": "ten" }),
      );
      assertEquals(badNumber.status, 400);
      const badState = await post(
        server.url,
        googleHeaders(channelId, { "x-goog-resource-state": "add" }),
      );
      assertEquals(badState.status, 400);
      const badId = await post(server.url, googleHeaders("x".repeat(65)));
      assertEquals(badId.status, 400);
      const method = await post(server.url, googleHeaders(channelId), { method: "PUT" });
      assertEquals(method.status, 405);
      const get = await post(server.url, googleHeaders(channelId), { method: "GET" });
      assertEquals(get.status, 405);
      const type = await post(
        server.url,
        googleHeaders(channelId, { "content-type": "application/x-www-form-urlencoded" }),
        { body: "a=b" },
      );
      assertEquals(type.status, 415);
      const big = await post(server.url, googleHeaders(channelId), { body: "x".repeat(10_000) });
      assertEquals(big.status, 413);
    });

    await t.step("database down: 503, nothing recorded; the retry succeeds", async () => {
      const before = await connectionState(db.sql, connectionId);
      const other = crypto.randomUUID();
      await insertChannel(db.sql, {
        connectionId,
        provider: "google",
        channelId: other,
        secret: SECRET,
      });
      current = dead;
      // One channel is cached (the recording statement fails), one is not (the lookup fails).
      const cached = await post(
        server.url,
        googleHeaders(channelId, { "x-goog-message-number": "3001" }),
      );
      const cold = await post(
        server.url,
        googleHeaders(other, { "x-goog-message-number": "3002", "x-goog-resource-id": "r" }),
      );
      assertEquals([cached.status, cold.status], [503, 503]);
      assertEquals(cached.json.error, "unavailable");
      current = null;
      const notOpen = await post(server.url, googleHeaders(channelId));
      assertEquals(notOpen.status, 503);
      assertEquals(await connectionState(db.sql, connectionId), before);
      assertEquals(await counter(metrics, "unavailable"), 3);

      current = db.sql;
      const retried = await post(
        server.url,
        googleHeaders(channelId, { "x-goog-message-number": "3001" }),
      );
      assertEquals(retried.json, { result: "accepted" });
      const after = await connectionState(db.sql, connectionId);
      assertEquals(after.seq, before.seq + 1);
      assertEquals(after.keys, before.keys + 1);
    });

    await t.step("a database that hangs gets 503 within the response deadline", async () => {
      const listenerSocket = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const held: Deno.Conn[] = [];
      const accepting = (async () => {
        for await (const conn of listenerSocket) held.push(conn);
      })();
      const hanging = openSql(`postgres://postgres@127.0.0.1:${listenerSocket.addr.port}/x`, {
        max: 1,
        connectTimeoutMs: 1_000,
      });
      const slow = webhookApp(() => hanging, 300);
      const slowServer = await serveApp(slow.app);
      try {
        const started = performance.now();
        const response = await post(
          slowServer.url,
          googleHeaders(channelId, { "x-goog-message-number": "4001" }),
        );
        const elapsed = performance.now() - started;
        assertEquals(response.status, 503);
        assert(elapsed < 1_000, `answered after ${Math.round(elapsed)} ms`);
      } finally {
        await slowServer.close();
        await hanging.end({ timeout: 0 });
        listenerSocket.close();
        for (const conn of held) conn.close();
        await accepting.catch(() => {});
      }
    });

    await t.step("endpoint down while Google retries: processed once after recovery", async () => {
      const before = await connectionState(db.sql, connectionId);
      // Reserve a port, then leave it closed until the third attempt or so.
      const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = probe.addr.port;
      probe.close();
      const deliverer = createDeliverer();
      const attempts: (number | string)[] = [];
      deliverer.send({
        url: `http://127.0.0.1:${port}/webhooks/google`,
        headers: googleHeaders(channelId, { "x-goog-message-number": "5001" }),
        body: "",
        onAttempt: (_attempt, outcome) => attempts.push(outcome),
      }, {
        maxAttempts: 8,
        baseDelayMs: 50,
        timeoutMs: 2_000,
        isSuccess: (status) => [102, 200, 201, 202, 204].includes(status),
        isRetryable: (outcome) => typeof outcome === "string" || outcome >= 500,
      });
      await new Promise((resolve) => setTimeout(resolve, 200));
      const late = await serveApp(app, port);
      try {
        await deliverer.flush();
      } finally {
        await deliverer.close();
        await late.close();
      }
      assert(attempts[0] === "error", `first attempt ${attempts[0]}`);
      assertEquals(attempts.at(-1), 200);
      const after = await connectionState(db.sql, connectionId);
      assertEquals(after.seq, before.seq + 1);
      assertEquals(after.keys, before.keys + 1);
    });

    await t.step("no log line carries a channel token", () => {
      assert(logLines.length > 0, "expected log lines");
      for (const line of logLines) {
        assert(!line.includes(SECRET), `secret in log line: ${line}`);
        assert(!line.includes("forged-token-value"), `forged token in log line: ${line}`);
      }
      assert(logLines.some((line) => line.includes("channel token does not match")));
      assert(logLines.some((line) => line.includes("database unavailable")));
    });
  } finally {
    await server.close();
    await listener.unlisten();
    await dead.end({ timeout: 0 });
    await db.close();
    await teardownLogging();
  }
});
