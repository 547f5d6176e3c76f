import { openSql, type Sql } from "../../src/storage/client.ts";
import { insertConnection, SYNC_CHANNEL } from "../../src/storage/connections.ts";
import { insertProvider } from "../../src/storage/calendar_providers.ts";
import { insertChannel } from "../../src/storage/webhook_channels.ts";
import { createApp } from "../../src/http/app.ts";
import { setupLogging, teardownLogging } from "../../src/log/setup.ts";
import { createMetrics } from "../../src/metrics/metrics.ts";
import { MAX_VALIDATION_TOKEN_CHARS } from "../../src/webhooks/microsoft_webhook.ts";
import { mountWebhooks } from "../../src/webhooks/routes.ts";
import { assert, assertEquals, waitFor } from "../support/assert.ts";
import { createMigratedDatabase } from "../support/migrated_database.ts";
import { serveApp } from "../support/serve_app.ts";

const CLIENT_STATE = "Jq2c9Xw4Lr7Tz1Vb5Nm8Kp3Gs6Hd0Fa_Ye-Uo2Ri4Ec";
const USER = "8ee44408-0679-472c-bc2a-692812af3437";
const TENANT = "84bd8158-6d4d-4958-8b9f-9d6445542f95";

/** A change notification shaped like wire formats §4.3 (the event variant). */
function change(
  subscriptionId: string,
  options: { eventId?: string; etag?: string; changeType?: string; clientState?: string } = {},
) {
  const eventId = options.eventId ?? "AAMkAGI2TG93AAA=";
  const resource = `Users/${USER}/Events/${eventId}`;
  return {
    subscriptionId,
    subscriptionExpirationDateTime: "2026-03-19T22:11:09.952Z",
    changeType: options.changeType ?? "updated",
    resource,
    resourceData: {
      "@odata.type": "#Microsoft.Graph.Event",
      "@odata.id": resource,
      "@odata.etag": options.etag ?? 'W/"CQAAABYAAADkrWGo7bouTKlsgTZMr9KwAAAUWRHf"',
      id: eventId,
    },
    clientState: options.clientState ?? CLIENT_STATE,
    tenantId: TENANT,
  };
}

/** A lifecycle notification shaped like wire formats §4.5. */
function lifecycle(subscriptionId: string, lifecycleEvent: string) {
  return {
    subscriptionId,
    subscriptionExpirationDateTime: "2026-03-20T11:00:00.0000000Z",
    tenantId: TENANT,
    clientState: CLIENT_STATE,
    lifecycleEvent,
  };
}

async function deliver(
  url: string,
  body: unknown,
  init: { method?: string; contentType?: string; raw?: string } = {},
) {
  const response = await fetch(`${url}/webhooks/microsoft`, {
    method: init.method ?? "POST",
    headers: { "content-type": init.contentType ?? "application/json; charset=utf-8" },
    body: init.method === "GET" ? undefined : init.raw ?? JSON.stringify(body),
  });
  const text = await response.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    // Not JSON: callers look at `text`.
  }
  return { status: response.status, text, json, headers: response.headers };
}

async function connectionState(sql: Sql, connectionId: string) {
  const [row] = await sql<
    { seq: number; keys: number; full_seq: number | null; cursor: unknown }[]
  >`
    select c.sync_requested_seq::int as seq, c.full_sync_requested_seq::int as full_seq,
      c.sync_cursor as cursor,
      (select count(*)::int from webhook_dedupe_keys k where k.connection_id = c.id) as keys
    from external_calendar_connections c where c.id = ${connectionId}`;
  return row;
}

Deno.test("Microsoft Graph change notifications", async (t) => {
  const logLines: string[] = [];
  await setupLogging("debug", (line) => logLines.push(line));
  const db = await createMigratedDatabase("webhook_microsoft");
  const provider = await insertProvider(db.sql, {
    kind: "microsoft",
    name: "graph",
    allowlisted: true,
  });
  async function connection(calendar: string) {
    const { id } = await insertConnection(db.sql, {
      providerId: provider.id,
      externalCalendarId: calendar,
      refreshToken: "M.R3_BAY.refresh",
      accountLabel: null,
    });
    const subscriptionId = crypto.randomUUID();
    const row = await insertChannel(db.sql, {
      connectionId: id,
      provider: "microsoft",
      channelId: subscriptionId,
      secret: CLIENT_STATE,
    });
    await db.sql`update webhook_channels set status = 'active', next_work_at = null
      where id = ${row.id}`;
    return { id, subscriptionId, rowId: row.id };
  }
  const first = await connection("primary");
  const second = await connection("team");
  const notified: string[] = [];
  const listener = await db.sql.listen(SYNC_CHANNEL, (payload) => notified.push(payload));

  let current: Sql | null = db.sql;
  const metrics = createMetrics();
  const app = createApp({
    metrics,
    readiness: () => Promise.resolve({ ready: true }),
    maxBodyBytes: 1_048_576,
    routes: (app) => mountWebhooks(app, { sql: () => current, metrics, deadlineMs: 2_500 }),
  });
  const server = await serveApp(app);
  const dead = openSql("postgres://postgres@127.0.0.1:9/nothing", {
    max: 1,
    connectTimeoutMs: 500,
  });

  try {
    await t.step("the validation handshake echoes the decoded token as text/plain", async () => {
      current = null; // Answered without the database, which may not even be open.
      const token =
        "Validation: Testing client application reachability for subscription Request-Id: " +
        "a8d4f7c1-2b3e-4f5a-9c8d-7e6f5a4b3c2d & <script>";
      const response = await fetch(
        `${server.url}/webhooks/microsoft?validationToken=${encodeURIComponent(token)}`,
        { method: "POST", headers: { "content-type": "text/plain; charset=utf-8" }, body: "" },
      );
      assertEquals(response.status, 200);
      assert(response.headers.get("content-type")!.startsWith("text/plain"));
      assertEquals(response.headers.get("x-content-type-options"), "nosniff");
      assertEquals(await response.text(), token);
      current = db.sql;
    });

    await t.step("an empty or overlong validation token is refused", async () => {
      for (const token of ["", "x".repeat(MAX_VALIDATION_TOKEN_CHARS + 1)]) {
        const response = await fetch(`${server.url}/webhooks/microsoft?validationToken=${token}`, {
          method: "POST",
          body: "",
        });
        assertEquals(response.status, 400);
        assertEquals((await response.json()).error, "invalid_validation_token");
      }
    });

    await t.step("a change notification is recorded and answered 202", async () => {
      // An idle connection is NOTIFYed; one already due is left to the scheduler.
      await db.sql`update external_calendar_connections set sync_needed = false
        where id = ${first.id}`;
      const before = await connectionState(db.sql, first.id);
      const response = await deliver(server.url, { value: [change(first.subscriptionId)] });
      assertEquals(response.status, 202);
      assertEquals(response.json, { accepted: 1, duplicate: 0, ignored: 0, rejected: 0 });
      const after = await connectionState(db.sql, first.id);
      assertEquals([after.seq, after.keys], [before.seq + 1, before.keys + 1]);
      await waitFor(() => notified.includes(first.id), { what: "NOTIFY" });
    });

    await t.step("a duplicate gets 202 and changes nothing", async () => {
      const before = await connectionState(db.sql, first.id);
      const response = await deliver(server.url, { value: [change(first.subscriptionId)] });
      assertEquals(response.status, 202);
      assertEquals(response.json.duplicate, 1);
      assertEquals(await connectionState(db.sql, first.id), before);
    });

    await t.step("a batch across subscriptions is recorded in one go", async () => {
      const a = await connectionState(db.sql, first.id);
      const b = await connectionState(db.sql, second.id);
      const response = await deliver(server.url, {
        value: [
          change(first.subscriptionId, { etag: 'W/"v2"' }),
          change(first.subscriptionId, { etag: 'W/"v3"' }),
          change(first.subscriptionId, { etag: 'W/"v3"' }),
          change(first.subscriptionId, { etag: 'W/"v3"', changeType: "deleted" }),
          change(second.subscriptionId, { eventId: "AAMkOther=" }),
        ],
      });
      assertEquals(response.status, 202);
      assertEquals(response.json, { accepted: 4, duplicate: 1, ignored: 0, rejected: 0 });
      const a2 = await connectionState(db.sql, first.id);
      const b2 = await connectionState(db.sql, second.id);
      // One statement bumps each connection once, however many of its changes it carries.
      assertEquals([a2.seq, a2.keys], [a.seq + 1, a.keys + 3]);
      assertEquals([b2.seq, b2.keys], [b.seq + 1, b.keys + 1]);
    });

    await t.step("the same batch from 30 concurrent clients bumps once", async () => {
      const before = await connectionState(db.sql, first.id);
      const body = { value: [change(first.subscriptionId, { etag: 'W/"concurrent"' })] };
      const responses = await Promise.all(
        Array.from({ length: 30 }, () => deliver(server.url, body)),
      );
      assertEquals(responses.map((r) => r.status), responses.map(() => 202));
      assertEquals(responses.reduce((sum, r) => sum + r.json.accepted, 0), 1);
      const after = await connectionState(db.sql, first.id);
      assertEquals([after.seq, after.keys], [before.seq + 1, before.keys + 1]);
    });

    await t.step("a forged clientState is rejected with no side effects", async () => {
      const before = await connectionState(db.sql, first.id);
      const forged = await deliver(server.url, {
        value: [change(first.subscriptionId, { etag: 'W/"f"', clientState: "forged-state" })],
      });
      assertEquals(forged.status, 403);
      const missing = { ...change(first.subscriptionId, { etag: 'W/"g"' }) } as Record<
        string,
        unknown
      >;
      delete missing.clientState;
      assertEquals((await deliver(server.url, { value: [missing] })).status, 403);
      assertEquals(await connectionState(db.sql, first.id), before);
      // A forged item beside a genuine one does not cost the genuine one its retry-free ack.
      const mixed = await deliver(server.url, {
        value: [
          change(first.subscriptionId, { etag: 'W/"h"', clientState: "forged-state" }),
          change(first.subscriptionId, { etag: 'W/"i"' }),
        ],
      });
      assertEquals(mixed.status, 202);
      assertEquals(mixed.json, { accepted: 1, duplicate: 0, ignored: 0, rejected: 1 });
    });

    await t.step("unknown subscriptions are ignored and counted", async () => {
      const response = await deliver(server.url, { value: [change(crypto.randomUUID())] });
      assertEquals(response.status, 202);
      assertEquals(response.json.ignored, 1);
      const data = await metrics.webhookNotifications.get();
      const ignored = data.values.find((v) =>
        v.labels.provider === "microsoft" && v.labels.result === "ignored"
      );
      assertEquals(ignored?.value, 1);
    });

    await t.step("missed: a full sync is requested", async () => {
      await db.sql`update external_calendar_connections set sync_cursor = '{"position":"x"}'
        where id = ${second.id}`;
      const before = await connectionState(db.sql, second.id);
      const response = await deliver(server.url, {
        value: [lifecycle(second.subscriptionId, "missed")],
      });
      assertEquals(response.status, 202);
      const after = await connectionState(db.sql, second.id);
      assertEquals([after.seq, after.full_seq], [before.seq + 1, before.seq + 1]);
    });

    await t.step(
      "reauthorizationRequired and subscriptionRemoved schedule channel work",
      async () => {
        await deliver(server.url, {
          value: [
            lifecycle(first.subscriptionId, "reauthorizationRequired"),
            lifecycle(second.subscriptionId, "subscriptionRemoved"),
            lifecycle(second.subscriptionId, "somethingNew"),
          ],
        });
        const rows = await db.sql<{ id: string; status: string; due: boolean }[]>`
        select id, status, next_work_at <= now() as due from webhook_channels`;
        const byId = new Map(rows.map((row) => [row.id, row]));
        assertEquals(byId.get(first.rowId), { id: first.rowId, status: "active", due: true });
        assertEquals(byId.get(second.rowId), { id: second.rowId, status: "removed", due: true });
      },
    );

    await t.step("bad input gets a clear 4xx", async () => {
      const cases: [Promise<{ status: number; json: { error?: string } | null }>, number][] = [
        [deliver(server.url, null, { raw: "{not json" }), 400],
        [deliver(server.url, { value: [] }), 400],
        [deliver(server.url, { nothing: true }), 400],
        [deliver(server.url, { value: [{ subscriptionId: "x" }] }), 400],
        [deliver(server.url, { value: [change("bad id with spaces")] }), 400],
        [
          deliver(server.url, { value: [change(first.subscriptionId)] }, {
            contentType: "text/xml",
          }),
          415,
        ],
        [deliver(server.url, null, { method: "GET" }), 405],
        [deliver(server.url, null, { method: "DELETE" }), 405],
        [deliver(server.url, null, { raw: "x".repeat(1_048_577) }), 413],
      ];
      for (const [response, status] of cases) {
        const answer = await response;
        assertEquals(answer.status, status);
        assert(typeof answer.json?.error === "string", "a JSON error body");
      }
    });

    await t.step("database down: 503, nothing recorded; the retry succeeds", async () => {
      const before = await connectionState(db.sql, first.id);
      const body = { value: [change(first.subscriptionId, { etag: 'W/"outage"' })] };
      current = dead;
      const down = await deliver(server.url, body);
      assertEquals(down.status, 503);
      assertEquals(down.headers.get("retry-after"), "5");
      current = db.sql;
      assertEquals(await connectionState(db.sql, first.id), before);
      const retried = await deliver(server.url, body);
      assertEquals(retried.status, 202);
      assertEquals(retried.json.accepted, 1);
      const after = await connectionState(db.sql, first.id);
      assertEquals([after.seq, after.keys], [before.seq + 1, before.keys + 1]);
    });

    await t.step("no log line carries a clientState", () => {
      for (const line of logLines) {
        assert(!line.includes(CLIENT_STATE), `clientState in log line: ${line}`);
        assert(!line.includes("forged-state"), `forged clientState in log line: ${line}`);
      }
      assert(logLines.some((line) => line.includes('"forged_mismatch":')));
    });
  } finally {
    await server.close();
    await listener.unlisten();
    await dead.end({ timeout: 0 });
    await db.close();
    await teardownLogging();
  }
});

Deno.test("a 1,000-item junk Graph batch writes one log line, with counts by reason", async () => {
  const logLines: string[] = [];
  await setupLogging("debug", (line) => logLines.push(line));
  await using db = await createMigratedDatabase("webhook_microsoft_junk");
  const provider = await insertProvider(db.sql, {
    kind: "microsoft",
    name: "m",
    allowlisted: true,
  });
  const { id } = await insertConnection(db.sql, {
    providerId: provider.id,
    externalCalendarId: "primary",
    refreshToken: "r",
    accountLabel: null,
  });
  const known = crypto.randomUUID();
  await insertChannel(db.sql, {
    connectionId: id,
    provider: "microsoft",
    channelId: known,
    secret: CLIENT_STATE,
  });
  const metrics = createMetrics();
  const app = createApp({
    metrics,
    readiness: () => Promise.resolve({ ready: true }),
    maxBodyBytes: 1_048_576,
    routes: (app) => mountWebhooks(app, { sql: () => db.sql, metrics, deadlineMs: 5_000 }),
  });
  const server = await serveApp(app);
  try {
    const value = Array.from({ length: 1_000 }, (_, i) => {
      if (i % 3 === 0) return { subscriptionId: "bad id!", changeType: "updated", resource: "r" };
      if (i % 3 === 1) return change(crypto.randomUUID(), { eventId: `e${i}` });
      return change(known, { eventId: `e${i}`, clientState: `forged-${i}` });
    });
    const before = logLines.length;
    const answer = await deliver(server.url, { value });
    assertEquals(answer.status, 202);
    const written = logLines.slice(before).map((line) => JSON.parse(line));
    assert(written.length <= 2, `${written.length} lines for one delivery`);
    const summary = written.find((line) => line.reasons);
    assertEquals(summary?.reasons, {
      invalid_item: 334,
      unknown_subscription: 333,
      forged_mismatch: 333,
    });
    assertEquals(summary?.level, "warning");
  } finally {
    await server.close();
    await teardownLogging();
  }
});
