import { setupLogging, teardownLogging } from "../../src/log/setup.ts";
import { createMigratedDatabase } from "../../testkit/scratch_database.ts";
import { insertProvider } from "../../src/storage/calendar_providers.ts";
import { insertConnection } from "../../src/storage/connections.ts";
import { insertChannel } from "../../src/storage/webhook_channels.ts";
import { createMetrics } from "../../src/metrics/metrics.ts";
import { createApp } from "../../src/http/app.ts";
import { mountWebhooks } from "../../src/webhooks/routes.ts";
import { createWorkGate, type WorkGate } from "../../src/storage/work_gate.ts";
import { serveApp } from "../support/serve_app.ts";
import type { Sql } from "../../src/storage/client.ts";
import { MAX_VALIDATION_TOKEN_CHARS } from "../../src/webhooks/microsoft_webhook.ts";
import { assert, assertEquals, waitFor } from "../support/assert.ts";
import { unreachableDatabase } from "../support/unreachable_database.ts";
import { type WebhookFixture, webhookFixture } from "../support/webhook_fixture.ts";

const CLIENT_STATE = "Jq2c9Xw4Lr7Tz1Vb5Nm8Kp3Gs6Hd0Fa_Ye-Uo2Ri4Ec";
const USER = "8ee44408-0679-472c-bc2a-692812af3437";
const TENANT = "84bd8158-6d4d-4958-8b9f-9d6445542f95";

/** A connection with an active Graph subscription. */
type Subscribed = { id: string; subscriptionId: string; rowId: string };

/** Adds a connection to `calendar` with an active Graph subscription, no channel work due. */
async function subscribed(fx: WebhookFixture, calendar: string): Promise<Subscribed> {
  const { id, channelId, rowId } = await fx.listeningConnection({
    calendar,
    refreshToken: "M.R3_BAY.refresh",
    secret: CLIENT_STATE,
  });
  return { id, subscriptionId: channelId, rowId };
}

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

/** A change notification without its clientState. */
function withoutClientState(subscription: Subscribed, etag = 'W/"g"'): Record<string, unknown> {
  const { clientState: _, ...rest } = change(subscription.subscriptionId, { etag });
  return rest;
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

Deno.test("the Graph validation handshake echoes the decoded token as text/plain", async () => {
  await using fx = await webhookFixture("microsoft");
  fx.useDatabase(null); // Answered without the database, which may not even be open.
  const token =
    "Validation: Testing client application reachability for subscription Request-Id: " +
    "a8d4f7c1-2b3e-4f5a-9c8d-7e6f5a4b3c2d & <script>";
  const response = await fetch(
    `${fx.server.url}/webhooks/microsoft?validationToken=${encodeURIComponent(token)}`,
    { method: "POST", headers: { "content-type": "text/plain; charset=utf-8" }, body: "" },
  );
  assertEquals(response.status, 200);
  assert(response.headers.get("content-type")!.startsWith("text/plain"));
  assertEquals(response.headers.get("x-content-type-options"), "nosniff");
  assertEquals(await response.text(), token);
});

Deno.test("an empty or overlong Graph validation token is refused", async () => {
  await using fx = await webhookFixture("microsoft");
  for (const token of ["", "x".repeat(MAX_VALIDATION_TOKEN_CHARS + 1)]) {
    const response = await fetch(`${fx.server.url}/webhooks/microsoft?validationToken=${token}`, {
      method: "POST",
      body: "",
    });
    assertEquals(response.status, 400);
    assertEquals((await response.json()).error, "invalid_validation_token");
  }
});

Deno.test("a Graph change notification is recorded and answered 202", async () => {
  await using fx = await webhookFixture("microsoft");
  const first = await subscribed(fx, "primary");
  // An idle connection is NOTIFYed; one already due is left to the scheduler.
  await fx.db.sql`update external_calendar_connections set sync_needed = false
    where id = ${first.id}`;
  const before = await connectionState(fx.db.sql, first.id);
  const response = await deliver(fx.server.url, { value: [change(first.subscriptionId)] });
  assertEquals(response.status, 202);
  assertEquals(response.json, { accepted: 1, duplicate: 0, ignored: 0, rejected: 0 });
  const after = await connectionState(fx.db.sql, first.id);
  assertEquals([after.seq, after.keys], [before.seq + 1, before.keys + 1]);
  await waitFor(() => fx.syncs.includes(first.id), { what: "NOTIFY" });
});

Deno.test("a duplicate Graph change notification gets 202 and changes nothing", async () => {
  await using fx = await webhookFixture("microsoft");
  const first = await subscribed(fx, "primary");
  const body = { value: [change(first.subscriptionId)] };
  assertEquals((await deliver(fx.server.url, body)).json.accepted, 1);
  const before = await connectionState(fx.db.sql, first.id);
  const response = await deliver(fx.server.url, body);
  assertEquals(response.status, 202);
  assertEquals(response.json.duplicate, 1);
  assertEquals(await connectionState(fx.db.sql, first.id), before);
});

Deno.test("a Graph batch across subscriptions is recorded in one go", async () => {
  await using fx = await webhookFixture("microsoft");
  const first = await subscribed(fx, "primary");
  const second = await subscribed(fx, "team");
  const a = await connectionState(fx.db.sql, first.id);
  const b = await connectionState(fx.db.sql, second.id);
  const response = await deliver(fx.server.url, {
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
  const a2 = await connectionState(fx.db.sql, first.id);
  const b2 = await connectionState(fx.db.sql, second.id);
  // One statement bumps each connection once, however many of its changes it carries.
  assertEquals([a2.seq, a2.keys], [a.seq + 1, a.keys + 3]);
  assertEquals([b2.seq, b2.keys], [b.seq + 1, b.keys + 1]);
});

Deno.test("the same Graph batch from 30 concurrent clients bumps once", async () => {
  await using fx = await webhookFixture("microsoft");
  const first = await subscribed(fx, "primary");
  const before = await connectionState(fx.db.sql, first.id);
  const body = { value: [change(first.subscriptionId, { etag: 'W/"concurrent"' })] };
  const responses = await Promise.all(
    Array.from({ length: 30 }, () => deliver(fx.server.url, body)),
  );
  assertEquals(responses.map((r) => r.status), responses.map(() => 202));
  assertEquals(responses.reduce((sum, r) => sum + r.json.accepted, 0), 1);
  const after = await connectionState(fx.db.sql, first.id);
  assertEquals([after.seq, after.keys], [before.seq + 1, before.keys + 1]);
});

Deno.test("a forged Graph clientState is rejected with no side effects", async () => {
  await using fx = await webhookFixture("microsoft");
  const first = await subscribed(fx, "primary");
  const before = await connectionState(fx.db.sql, first.id);
  const forged = await deliver(fx.server.url, {
    value: [change(first.subscriptionId, { etag: 'W/"f"', clientState: "forged-state" })],
  });
  assertEquals(forged.status, 403);
  assertEquals((await deliver(fx.server.url, { value: [withoutClientState(first)] })).status, 403);
  assertEquals(await connectionState(fx.db.sql, first.id), before);
  // A forged item beside a genuine one does not cost the genuine one its retry-free ack.
  const mixed = await deliver(fx.server.url, {
    value: [
      change(first.subscriptionId, { etag: 'W/"h"', clientState: "forged-state" }),
      change(first.subscriptionId, { etag: 'W/"i"' }),
    ],
  });
  assertEquals(mixed.status, 202);
  assertEquals(mixed.json, { accepted: 1, duplicate: 0, ignored: 0, rejected: 1 });
});

Deno.test("Graph notifications for unknown subscriptions are ignored and counted", async () => {
  await using fx = await webhookFixture("microsoft");
  const response = await deliver(fx.server.url, { value: [change(crypto.randomUUID())] });
  assertEquals(response.status, 202);
  assertEquals(response.json.ignored, 1);
  const data = await fx.server.metrics.webhookNotifications.get();
  const ignored = data.values.find((v) =>
    v.labels.provider === "microsoft" && v.labels.result === "ignored"
  );
  assertEquals(ignored?.value, 1);
});

Deno.test("a missed lifecycle notification requests a full sync", async () => {
  await using fx = await webhookFixture("microsoft");
  const second = await subscribed(fx, "team");
  await fx.db.sql`update external_calendar_connections set sync_cursor = '{"position":"x"}'
    where id = ${second.id}`;
  const before = await connectionState(fx.db.sql, second.id);
  const response = await deliver(fx.server.url, {
    value: [lifecycle(second.subscriptionId, "missed")],
  });
  assertEquals(response.status, 202);
  const after = await connectionState(fx.db.sql, second.id);
  assertEquals([after.seq, after.full_seq], [before.seq + 1, before.seq + 1]);
});

Deno.test("reauthorizationRequired and subscriptionRemoved schedule channel work", async () => {
  await using fx = await webhookFixture("microsoft");
  const first = await subscribed(fx, "primary");
  const second = await subscribed(fx, "team");
  await deliver(fx.server.url, {
    value: [
      lifecycle(first.subscriptionId, "reauthorizationRequired"),
      lifecycle(second.subscriptionId, "subscriptionRemoved"),
      lifecycle(second.subscriptionId, "somethingNew"),
    ],
  });
  const rows = await fx.db.sql<{ id: string; status: string; due: boolean }[]>`
    select id, status, next_work_at <= now() as due from webhook_channels`;
  const byId = new Map(rows.map((row) => [row.id, row]));
  assertEquals(byId.get(first.rowId), { id: first.rowId, status: "active", due: true });
  assertEquals(byId.get(second.rowId), { id: second.rowId, status: "removed", due: true });
});

Deno.test("bad input to the Graph endpoint gets a clear 4xx", async () => {
  await using fx = await webhookFixture("microsoft");
  const first = await subscribed(fx, "primary");
  const { url } = fx.server;
  const cases: [Promise<{ status: number; json: { error?: string } | null }>, number][] = [
    [deliver(url, null, { raw: "{not json" }), 400],
    [deliver(url, { value: [] }), 400],
    [deliver(url, { nothing: true }), 400],
    [deliver(url, { value: [{ subscriptionId: "x" }] }), 400],
    [deliver(url, { value: [change("bad id with spaces")] }), 400],
    [deliver(url, { value: [change(first.subscriptionId)] }, { contentType: "text/xml" }), 415],
    [deliver(url, null, { method: "GET" }), 405],
    [deliver(url, null, { method: "DELETE" }), 405],
    [deliver(url, null, { raw: "x".repeat(1_048_577) }), 413],
  ];
  for (const [response, status] of cases) {
    const answer = await response;
    assertEquals(answer.status, status);
    assert(typeof answer.json?.error === "string", "a JSON error body");
  }
});

Deno.test("database down: Graph gets 503 and nothing is recorded; the retry succeeds", async () => {
  await using fx = await webhookFixture("microsoft");
  await using dead = unreachableDatabase();
  const first = await subscribed(fx, "primary");
  const before = await connectionState(fx.db.sql, first.id);
  const body = { value: [change(first.subscriptionId, { etag: 'W/"outage"' })] };
  fx.useDatabase(dead.sql);
  const down = await deliver(fx.server.url, body);
  assertEquals(down.status, 503);
  assertEquals(down.headers.get("retry-after"), "5");
  fx.useDatabase(fx.db.sql);
  assertEquals(await connectionState(fx.db.sql, first.id), before);
  const retried = await deliver(fx.server.url, body);
  assertEquals(retried.status, 202);
  assertEquals(retried.json.accepted, 1);
  const after = await connectionState(fx.db.sql, first.id);
  assertEquals([after.seq, after.keys], [before.seq + 1, before.keys + 1]);
});

Deno.test("no log line carries a Graph clientState, genuine or forged", async () => {
  await using fx = await webhookFixture("microsoft");
  await using dead = unreachableDatabase();
  const first = await subscribed(fx, "primary");
  const forged = change(first.subscriptionId, { etag: 'W/"f"', clientState: "forged-state" });
  // One delivery of each outcome: accepted, duplicate, rejected, ignored, lifecycle, malformed.
  const bodies = [
    { value: [change(first.subscriptionId)] },
    { value: [change(first.subscriptionId)] },
    { value: [forged] },
    { value: [withoutClientState(first), change(first.subscriptionId, { etag: 'W/"i"' })] },
    { value: [change(crypto.randomUUID())] },
    { value: [lifecycle(first.subscriptionId, "reauthorizationRequired")] },
    { value: [{ subscriptionId: "x", clientState: CLIENT_STATE }] },
  ];
  for (const body of bodies) await deliver(fx.server.url, body);
  fx.useDatabase(dead.sql);
  const outage = { value: [change(first.subscriptionId, { etag: 'W/"outage"' })] };
  assertEquals((await deliver(fx.server.url, outage)).status, 503);

  for (const line of fx.logLines) {
    assert(!line.includes(CLIENT_STATE), `clientState in log line: ${line}`);
    assert(!line.includes("forged-state"), `forged clientState in log line: ${line}`);
  }
  assert(fx.logLines.some((line) => line.includes('"forged_mismatch":')));
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

Deno.test("a Graph delivery whose subscriptions are all cached takes no database slot to find them", async () => {
  const runs: string[] = [];
  const inner = createWorkGate({ maxConcurrent: 4, maxQueued: 10 });
  const gate: WorkGate = { run: (what, ms, work) => (runs.push(what), inner.run(what, ms, work)) };
  await using fx = await webhookFixture("microsoft", { gate });
  const sub = await subscribed(fx, "primary");
  const first = await deliver(fx.server.url, {
    value: [change(sub.subscriptionId, { eventId: "e1" })],
  });
  const second = await deliver(fx.server.url, {
    value: [change(sub.subscriptionId, { eventId: "e2" })],
  });
  assertEquals([first.status, second.status], [202, 202]);
  assertEquals(runs.filter((what) => what === "Graph subscription lookup").length, 1);
  assertEquals((await connectionState(fx.db.sql, sub.id)).keys, 2);
});
