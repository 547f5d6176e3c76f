import assert from "node:assert/strict";
import {
  type FakeMicrosoft,
  type GraphEvent,
  startFakeMicrosoft,
} from "../../testkit/fake_microsoft.ts";

type DeltaPage = {
  "@odata.context": string;
  "@odata.nextLink"?: string;
  "@odata.deltaLink"?: string;
  value: Array<Record<string, unknown>>;
};

const WINDOW = { start: "2024-01-01T00:00:00Z", end: "2024-02-01T00:00:00Z" };

async function refresh(microsoft: FakeMicrosoft, refreshToken: string) {
  const response = await fetch(microsoft.tokenUrl, {
    method: "POST",
    body: new URLSearchParams({
      grant_type: "refresh_token",
      refresh_token: refreshToken,
      client_id: "app",
      client_secret: "secret",
      scope: "offline_access Calendars.Read",
    }),
  });
  return { status: response.status, body: await response.json() };
}

async function get(url: string, token: string, headers: Record<string, string> = {}) {
  const response = await fetch(url, { headers: { authorization: `Bearer ${token}`, ...headers } });
  return { status: response.status, headers: response.headers, body: await response.json() };
}

function deltaUrl(microsoft: FakeMicrosoft, calendarId?: string): string {
  const path = calendarId
    ? `/me/calendars/${calendarId}/calendarView/delta`
    : "/me/calendarView/delta";
  const query = `startDateTime=${WINDOW.start}&endDateTime=${WINDOW.end}`;
  return `${microsoft.baseUrl}${path}?${query}`;
}

/** Follows nextLinks verbatim until a deltaLink, asserting one link per page. */
async function deltaRound(
  url: string,
  token: string,
  options: { pageSize?: number; betweenPages?: (page: number) => void } = {},
) {
  const items: Array<Record<string, unknown>> = [];
  const headers: Record<string, string> = options.pageSize
    ? { prefer: `odata.maxpagesize=${options.pageSize}` }
    : {};
  for (let page = 1, next = url;; page++) {
    const response = await get(next, token, headers);
    assert.equal(response.status, 200, JSON.stringify(response.body));
    if (options.pageSize) {
      assert.equal(
        response.headers.get("preference-applied"),
        `odata.maxpagesize=${options.pageSize}`,
      );
    }
    const body = response.body as DeltaPage;
    assert.ok(
      (body["@odata.nextLink"] === undefined) !== (body["@odata.deltaLink"] === undefined),
      "exactly one of nextLink/deltaLink",
    );
    items.push(...body.value);
    if (body["@odata.deltaLink"]) {
      return { items, deltaLink: body["@odata.deltaLink"], pages: page };
    }
    next = body["@odata.nextLink"] ?? "";
    assert.ok(next.startsWith("http://127.0.0.1:") && next.includes("$skiptoken="));
    options.betweenPages?.(page);
  }
}

function apply(
  mirror: Map<string, Record<string, unknown>>,
  items: Array<Record<string, unknown>>,
) {
  for (const item of items) {
    if (item["@removed"]) mirror.delete(String(item.id));
    else mirror.set(String(item.id), item);
  }
}

function ids(events: Iterable<{ id?: unknown }>): string[] {
  return [...events].map((event) => String(event.id)).sort();
}

function putInWindow(microsoft: FakeMicrosoft, subject: string, day = 2): GraphEvent {
  const date = `2024-01-${String(day).padStart(2, "0")}`;
  return microsoft.putEvent("primary", {
    subject,
    start: `${date}T09:00:00Z`,
    end: `${date}T10:00:00Z`,
  });
}

Deno.test("token endpoint rotates refresh tokens and answers AADSTS invalid_grant", async () => {
  await using microsoft = startFakeMicrosoft({ clientId: "app", clientSecret: "secret" });
  microsoft.addRefreshToken("rt-0");
  const first = await refresh(microsoft, "rt-0");
  assert.equal(first.status, 200);
  assert.equal(first.body.token_type, "Bearer");
  assert.equal(first.body.expires_in, 3599);
  assert.equal(typeof first.body.ext_expires_in, "number");
  assert.notEqual(first.body.refresh_token, "rt-0");
  assert.equal((await refresh(microsoft, "rt-0")).status, 200, "old token stays valid by default");
  assert.equal(microsoft.currentRefreshTokens().length, 3);

  const unknown = await refresh(microsoft, "never-issued");
  assert.equal(unknown.status, 400);
  assert.equal(unknown.body.error, "invalid_grant");
  assert.deepEqual(unknown.body.error_codes, [70008]);
  assert.match(unknown.body.error_description, /^AADSTS70008: /);
  microsoft.revokeRefreshToken(first.body.refresh_token);
  assert.deepEqual((await refresh(microsoft, first.body.refresh_token)).body.error_codes, [50173]);

  microsoft.setFault({ kind: "status", status: 503 }, { target: "token", times: 1 });
  const busy = await refresh(microsoft, "rt-0");
  assert.equal(busy.status, 503);
  assert.equal(busy.body.error, "temporarily_unavailable");
});

Deno.test("strict rotation retires the refresh token that was used", async () => {
  await using microsoft = startFakeMicrosoft({ rotateStrict: true, refreshTokens: ["rt-0"] });
  const first = await refresh(microsoft, "rt-0");
  assert.equal(first.status, 200);
  assert.equal((await refresh(microsoft, "rt-0")).body.error, "invalid_grant");
  assert.deepEqual(microsoft.currentRefreshTokens(), [first.body.refresh_token]);
});

Deno.test("delta needs a bearer token and a window on the first request", async () => {
  await using microsoft = startFakeMicrosoft();
  const anonymous = await fetch(deltaUrl(microsoft));
  assert.equal(anonymous.status, 401);
  assert.equal((await anonymous.json()).error.code, "InvalidAuthenticationToken");
  const token = microsoft.issueAccessToken();
  const noWindow = await get(`${microsoft.baseUrl}/me/calendarView/delta`, token);
  assert.equal(noWindow.status, 400);
  microsoft.expireAccessTokens();
  assert.equal((await get(deltaUrl(microsoft), token)).status, 401);
});

Deno.test("delta pages honour odata.maxpagesize and return only in-window events", async () => {
  await using microsoft = startFakeMicrosoft();
  const token = microsoft.issueAccessToken();
  for (let day = 2; day < 9; day++) putInWindow(microsoft, `in ${day}`, day);
  microsoft.putEvent("primary", { subject: "outside", start: "2024-03-05T09:00:00Z" });
  const allDay = microsoft.putEvent("primary", { isAllDay: true, start: "2024-01-20" });
  assert.equal(allDay.end.dateTime, "2024-01-21T00:00:00.0000000");
  const round = await deltaRound(deltaUrl(microsoft), token, { pageSize: 3 });
  assert.equal(round.pages, 3);
  const live = microsoft.liveEvents("primary", WINDOW);
  assert.equal(live.length, 8);
  assert.deepEqual(ids(round.items), ids(live));
  const first = round.items[0] as GraphEvent;
  assert.match(first.start.dateTime, /^2024-01-02T09:00:00\.0000000$/);
  assert.equal(first.start.timeZone, "UTC");
  assert.match(first["@odata.etag"], /^W\/"/);
});

Deno.test("following the deltaLink returns updates in full and deletions as @removed", async () => {
  await using microsoft = startFakeMicrosoft();
  const token = microsoft.issueAccessToken();
  const keep = putInWindow(microsoft, "keep");
  const edit = putInWindow(microsoft, "before", 3);
  const drop = putInWindow(microsoft, "drop", 4);
  const move = putInWindow(microsoft, "move", 5);
  const mirror = new Map<string, Record<string, unknown>>();
  const initial = await deltaRound(deltaUrl(microsoft), token);
  apply(mirror, initial.items);

  microsoft.putEvent("primary", { id: edit.id, subject: "after" });
  microsoft.deleteEvent("primary", drop.id);
  microsoft.putEvent("primary", { id: move.id, start: "2024-06-01T09:00:00Z" });
  const changes = await deltaRound(initial.deltaLink, token);
  const removed = changes.items.filter((item) => item["@removed"]);
  assert.deepEqual(ids(removed), ids([drop, move]));
  assert.deepEqual(removed[0]["@removed"], { reason: "deleted" });
  assert.equal(removed[0]["@odata.type"], "#microsoft.graph.event");
  apply(mirror, changes.items);
  assert.deepEqual(ids(mirror.values()), ids(microsoft.liveEvents("primary", WINDOW)));
  assert.equal(mirror.get(edit.id)?.subject, "after");
  assert.ok(mirror.has(keep.id));
  assert.deepEqual((await deltaRound(changes.deltaLink, token)).items, []);
});

Deno.test("a change between delta pages is caught by the next round", async () => {
  await using microsoft = startFakeMicrosoft({ defaultPageSize: 2 });
  const token = microsoft.issueAccessToken();
  const events = Array.from({ length: 6 }, (_, i) => putInWindow(microsoft, `e${i}`, i + 2));
  const mirror = new Map<string, Record<string, unknown>>();
  const initial = await deltaRound(deltaUrl(microsoft), token, {
    betweenPages(page) {
      if (page !== 1) return;
      microsoft.putEvent("primary", { id: events[0].id, subject: "edited mid-round" });
      microsoft.deleteEvent("primary", events[5].id);
    },
  });
  apply(mirror, initial.items);
  apply(mirror, (await deltaRound(initial.deltaLink, token)).items);
  assert.deepEqual(ids(mirror.values()), ids(microsoft.liveEvents("primary", WINDOW)));
  assert.equal(mirror.get(events[0].id)?.subject, "edited mid-round");
});

Deno.test("quirks: empty first page and items repeated across pages", async () => {
  await using microsoft = startFakeMicrosoft({
    quirks: { emptyFirstPage: true, duplicateAcrossPages: true },
  });
  const token = microsoft.issueAccessToken();
  for (let day = 2; day < 7; day++) putInWindow(microsoft, `d${day}`, day);
  const first = await get(deltaUrl(microsoft), token);
  assert.deepEqual(first.body.value, []);
  assert.ok(first.body["@odata.nextLink"]);
  const round = await deltaRound(deltaUrl(microsoft), token, { pageSize: 2 });
  assert.ok(round.items.length > 5, "some events are repeated");
  assert.equal(new Set(ids(round.items)).size, 5);
});

Deno.test("invalidated delta tokens answer 410 with Location and a resync code", async () => {
  await using microsoft = startFakeMicrosoft();
  const token = microsoft.issueAccessToken();
  putInWindow(microsoft, "x");
  assert.equal((await get(deltaUrl(microsoft, "work"), token)).status, 404, "unknown calendar");
  microsoft.addCalendar("work");
  const work = await deltaRound(deltaUrl(microsoft, "work"), token);
  microsoft.invalidateSyncTokens("work");
  const gone = await get(work.deltaLink, token);
  assert.equal(gone.status, 410);
  assert.equal(gone.body.error.code, "syncStateNotFound");
  assert.ok(gone.body.error.innerError["request-id"]);
  const location = gone.headers.get("location") ?? "";
  assert.match(location, /\$deltatoken=$/);
  assert.equal((await deltaRound(location, token)).items.length, 0, "Location restarts the round");

  const primary = await deltaRound(deltaUrl(microsoft), token);
  microsoft.invalidateSyncTokens(undefined, { code: "resyncRequired" });
  assert.equal((await get(primary.deltaLink, token)).body.error.code, "resyncRequired");
});

Deno.test("faults: 429 with fractional Retry-After, gone, malformed, hang and refused connections", async () => {
  const microsoft = startFakeMicrosoft();
  const token = microsoft.issueAccessToken();
  microsoft.setFault({ kind: "status", status: 429, retryAfter: "0.5" }, { times: 1 });
  const throttled = await get(deltaUrl(microsoft), token);
  assert.equal(throttled.status, 429);
  assert.equal(throttled.headers.get("retry-after"), "0.5");
  assert.equal(throttled.body.error.code, "TooManyRequests");
  const round = await deltaRound(deltaUrl(microsoft), token);

  microsoft.setFault({ kind: "gone" }, { times: 1 });
  assert.equal((await get(deltaUrl(microsoft), token)).status, 200, "gone only hits cursors");
  assert.equal((await get(round.deltaLink, token)).status, 410);
  microsoft.setFault({ kind: "malformed" }, { times: 1 });
  assert.ok(!Array.isArray((await get(deltaUrl(microsoft), token)).body.value));

  await microsoft.refuseConnections(true);
  await assert.rejects(fetch(deltaUrl(microsoft)), TypeError);
  await microsoft.refuseConnections(false);
  assert.equal((await get(round.deltaLink, token)).status, 200);

  microsoft.setFault({ kind: "hang" }, { target: "all" });
  await assert.rejects(
    fetch(microsoft.tokenUrl, { method: "POST", body: "", signal: AbortSignal.timeout(50) }),
    (error: Error) => error.name === "TimeoutError",
  );
  await microsoft.close();
  assert.equal(microsoft.requests.at(-1)?.status, 0);
});

type Hook = { query: URLSearchParams; contentType: string; body: string };

/** A local webhook receiver; `answer` decides each response. */
function startReceiver(answer: (hook: Hook) => Response | Promise<Response>) {
  const hooks: Hook[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    const url = new URL(request.url);
    const hook = {
      query: url.searchParams,
      contentType: request.headers.get("content-type") ?? "",
      body: await request.text(),
    };
    hooks.push(hook);
    return await answer(hook);
  });
  return {
    hooks,
    url: `http://127.0.0.1:${server.addr.port}/graph`,
    close: () => server.shutdown(),
  };
}

function echoValidation(hook: Hook): Response | null {
  const token = hook.query.get("validationToken");
  return token === null ? null : new Response(token, { headers: { "content-type": "text/plain" } });
}

async function subscribe(microsoft: FakeMicrosoft, token: string, body: Record<string, unknown>) {
  const response = await fetch(`${microsoft.baseUrl}/subscriptions`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({
      changeType: "created,updated,deleted",
      resource: "me/events",
      expirationDateTime: new Date(Date.now() + 3_600_000).toISOString(),
      clientState: "secret-state",
      ...body,
    }),
  });
  return { status: response.status, body: await response.json() };
}

Deno.test("subscription validation handshake: echo succeeds, refusal, timeout and bad echo fail", async () => {
  await using microsoft = startFakeMicrosoft({
    validationTimeoutMs: 200,
    maxSubscriptionMinutes: 4230,
  });
  const token = microsoft.issueAccessToken();
  const good = startReceiver((hook) => echoValidation(hook) ?? new Response(null, { status: 202 }));
  const created = await subscribe(microsoft, token, { notificationUrl: good.url });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  assert.equal(created.body.clientState, "secret-state");
  assert.equal(good.hooks[0].contentType, "text/plain; charset=utf-8");
  assert.equal(good.hooks[0].body, "");
  assert.match(good.hooks[0].query.get("validationToken") ?? "", /^Validation: .* Request-Id: /);

  const forbidden = startReceiver(() => new Response("no", { status: 403 }));
  const refused = await subscribe(microsoft, token, { notificationUrl: forbidden.url });
  assert.equal(refused.status, 400);
  assert.match(refused.body.error.message, /HTTP status code is 'Forbidden'/);

  const slow = startReceiver(async (hook) => {
    await new Promise((resolve) => setTimeout(resolve, 400));
    return echoValidation(hook) ?? new Response();
  });
  const timedOut = await subscribe(microsoft, token, { notificationUrl: slow.url });
  assert.equal(timedOut.body.error.message, "Subscription validation request timed out.");

  const encoded = startReceiver((hook) =>
    new Response(encodeURIComponent(hook.query.get("validationToken") ?? ""), {
      headers: { "content-type": "text/plain" },
    })
  );
  assert.equal((await subscribe(microsoft, token, { notificationUrl: encoded.url })).status, 400);

  const tooLong = await subscribe(microsoft, token, {
    notificationUrl: good.url,
    expirationDateTime: new Date(Date.now() + 4231 * 60_000).toISOString(),
  });
  assert.equal(tooLong.status, 400);
  assert.match(tooLong.body.error.message, /4230 minutes/);
  assert.deepEqual(microsoft.subscriptions().map((s) => s.id), [created.body.id]);
  await Promise.all([good, forbidden, slow, encoded].map((receiver) => receiver.close()));
});

Deno.test("change notifications are batched, retried until 2xx and renew/delete work", async () => {
  await using microsoft = startFakeMicrosoft({ notificationRetryBaseMs: 10 });
  const token = microsoft.issueAccessToken();
  const statuses = [500, 503];
  const receiver = startReceiver((hook) =>
    echoValidation(hook) ?? new Response(null, { status: statuses.shift() ?? 202 })
  );
  const created = await subscribe(microsoft, token, { notificationUrl: receiver.url });
  assert.equal(created.status, 201);
  const first = putInWindow(microsoft, "one");
  microsoft.deleteEvent("primary", first.id);
  await microsoft.flushDeliveries();
  const posts = receiver.hooks.filter((hook) => hook.query.get("validationToken") === null);
  assert.equal(posts.length, 3, "one batch, tried three times");
  assert.equal(posts[2].contentType, "application/json; charset=utf-8");
  const batch = JSON.parse(posts[2].body).value;
  assert.deepEqual(batch.map((n: { changeType: string }) => n.changeType), ["created", "deleted"]);
  assert.equal(batch[0].subscriptionId, created.body.id);
  assert.equal(batch[0].clientState, "secret-state");
  assert.equal(batch[0].resourceData.id, first.id);
  assert.equal(batch[0].resourceData["@odata.type"], "#Microsoft.Graph.Event");
  assert.ok(batch[0].tenantId && batch[0].subscriptionExpirationDateTime);

  const url = `${microsoft.baseUrl}/subscriptions/${created.body.id}`;
  const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
  const expirationDateTime = new Date(Date.now() + 7_200_000).toISOString();
  const renewed = await fetch(url, {
    method: "PATCH",
    headers,
    body: JSON.stringify({ expirationDateTime }),
  });
  assert.equal(renewed.status, 200);
  assert.equal((await renewed.json()).id, created.body.id);
  const removed = await fetch(url, { method: "DELETE", headers });
  assert.equal(removed.status, 204);
  await removed.body?.cancel();
  const again = await fetch(url, {
    method: "PATCH",
    headers,
    body: JSON.stringify({ expirationDateTime }),
  });
  assert.equal(again.status, 404);
  await again.body?.cancel();
  await receiver.close();
});

Deno.test("lifecycle notifications and a missed event after delivery gives up", async () => {
  await using microsoft = startFakeMicrosoft({
    notificationRetryBaseMs: 5,
    notificationMaxAttempts: 2,
  });
  const token = microsoft.issueAccessToken();
  const failing = startReceiver((hook) =>
    echoValidation(hook) ?? new Response(null, { status: 500 })
  );
  const lifecycle = startReceiver((hook) =>
    echoValidation(hook) ?? new Response(null, { status: 202 })
  );
  const created = await subscribe(microsoft, token, {
    notificationUrl: failing.url,
    lifecycleNotificationUrl: lifecycle.url,
  });
  assert.equal(created.status, 201);
  putInWindow(microsoft, "lost");
  await microsoft.flushDeliveries();
  assert.equal(microsoft.emitLifecycle(created.body.id, "reauthorizationRequired"), true);
  assert.equal(microsoft.emitLifecycle(created.body.id, "subscriptionRemoved"), true);
  await microsoft.flushDeliveries();
  const events = lifecycle.hooks.filter((hook) => hook.query.get("validationToken") === null)
    .map((hook) => JSON.parse(hook.body).value[0]);
  assert.deepEqual(events.map((e) => e.lifecycleEvent), [
    "missed",
    "reauthorizationRequired",
    "subscriptionRemoved",
  ]);
  assert.equal(events[0].clientState, "secret-state");
  assert.deepEqual(microsoft.subscriptions(), [], "subscriptionRemoved deletes it");
  assert.equal(microsoft.deliveries.filter((d) => d.kind === "notification").length, 2);
  await Promise.all([failing.close(), lifecycle.close()]);
});
