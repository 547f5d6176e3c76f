import assert from "node:assert/strict";
import { type FakeGoogle, type GoogleEvent, startFakeGoogle } from "../../testkit/fake_google.ts";

type EventsPage = {
  kind: string;
  items: GoogleEvent[];
  nextPageToken?: string;
  nextSyncToken?: string;
};

async function getJson(
  url: string,
  accessToken: string,
): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const response = await fetch(url, { headers: { authorization: `Bearer ${accessToken}` } });
  return { status: response.status, body: await response.json(), headers: response.headers };
}

async function refresh(
  google: FakeGoogle,
  refreshToken: string,
  extra: Record<string, string> = {},
) {
  const response = await fetch(google.tokenUrl, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "refresh_token",
      refresh_token: refreshToken,
      client_id: "cid",
      client_secret: "secret",
      ...extra,
    }),
  });
  return { status: response.status, body: await response.json() };
}

function eventsUrl(google: FakeGoogle, calendarId: string, params: Record<string, string>): string {
  const query = new URLSearchParams(params);
  return `${google.baseUrl}/calendars/${encodeURIComponent(calendarId)}/events?${query}`;
}

/** Pages through one sync round, asserting the one-token-per-page rule on every page. */
async function syncRound(
  google: FakeGoogle,
  accessToken: string,
  params: Record<string, string>,
  betweenPages?: (page: number) => void,
): Promise<{ items: GoogleEvent[]; syncToken: string; pages: number }> {
  const items: GoogleEvent[] = [];
  let pageToken: string | undefined;
  for (let page = 1;; page++) {
    const query = pageToken ? { ...params, pageToken } : params;
    const { status, body } = await getJson(eventsUrl(google, "primary", query), accessToken);
    assert.equal(status, 200, JSON.stringify(body));
    const events = body as unknown as EventsPage;
    assert.equal(events.kind, "calendar#events");
    assert.ok(Array.isArray(events.items));
    assert.ok(
      (events.nextPageToken === undefined) !== (events.nextSyncToken === undefined),
      "exactly one of nextPageToken/nextSyncToken per page",
    );
    items.push(...events.items);
    if (events.nextSyncToken) return { items, syncToken: events.nextSyncToken, pages: page };
    pageToken = events.nextPageToken;
    betweenPages?.(page);
  }
}

function applyToMirror(mirror: Map<string, GoogleEvent>, items: GoogleEvent[]): void {
  for (const item of items) {
    if (item.status === "cancelled") mirror.delete(item.id);
    else mirror.set(item.id, item);
  }
}

function sortedIds(events: Iterable<GoogleEvent>): string[] {
  return [...events].map((event) => event.id).sort();
}

Deno.test("token endpoint refreshes known tokens and answers invalid_grant for revoked ones", async () => {
  await using google = startFakeGoogle({ clientId: "cid", clientSecret: "secret" });
  google.addRefreshToken("1//refresh");
  const ok = await refresh(google, "1//refresh");
  assert.equal(ok.status, 200);
  assert.equal(ok.body.token_type, "Bearer");
  assert.equal(ok.body.expires_in, 3599);
  assert.equal(typeof ok.body.access_token, "string");
  assert.equal(ok.body.refresh_token, undefined, "Google does not rotate refresh tokens");

  google.revokeRefreshToken("1//refresh");
  const revoked = await refresh(google, "1//refresh");
  assert.equal(revoked.status, 400);
  assert.deepEqual(revoked.body, {
    error: "invalid_grant",
    error_description: "Token has been expired or revoked.",
  });
  assert.equal((await refresh(google, "1//never-issued")).status, 400);
  const wrongClient = await refresh(google, "1//refresh", { client_secret: "nope" });
  assert.equal(wrongClient.status, 401);
  assert.equal(wrongClient.body.error, "invalid_client");
  assert.equal(google.tokenRequests(), 4);
});

Deno.test("events.list needs a valid unexpired bearer token", async () => {
  await using google = startFakeGoogle();
  const url = eventsUrl(google, "primary", {});
  const none = await fetch(url);
  const body = await none.json();
  assert.equal(none.status, 401);
  assert.equal(body.error.errors[0].reason, "authError");
  const token = google.issueAccessToken();
  assert.equal((await getJson(url, token)).status, 200);
  google.expireAccessTokens();
  assert.equal((await getJson(url, token)).status, 401);
});

Deno.test("full sync pages carry exactly one token and nextSyncToken only on the last page", async () => {
  await using google = startFakeGoogle({ maxPageSize: 4 });
  const token = google.issueAccessToken();
  for (let i = 0; i < 10; i++) google.putEvent("primary", { summary: `e${i}` });
  const deleted = google.putEvent("primary", { summary: "gone" });
  google.deleteEvent("primary", deleted.id);
  const round = await syncRound(google, token, { maxResults: "100" });
  assert.equal(round.pages, 3, "ceiling of 4 per page over 10 live events");
  assert.deepEqual(sortedIds(round.items), sortedIds(google.liveEvents("primary")));
  assert.ok(
    round.items.every((item) => item.status !== "cancelled"),
    "no showDeleted, no tombstones",
  );
  const withDeleted = await syncRound(google, token, { showDeleted: "true" });
  assert.equal(withDeleted.items.filter((item) => item.status === "cancelled").length, 1);
});

Deno.test("all-day events and seeded calendars sync fully", async () => {
  await using google = startFakeGoogle({ maxPageSize: 2500 });
  const token = google.issueAccessToken();
  const allDay = google.putEvent("primary", { start: { date: "2024-01-02" } });
  assert.deepEqual(allDay.end, { date: "2024-01-03" });
  google.seedEvents("primary", 3000, { bytesEach: 1024 });
  const round = await syncRound(google, token, { maxResults: "2500" });
  assert.equal(round.pages, 2);
  assert.equal(round.items.length, 3001);
  const seeded = round.items.find((item) => item.id !== allDay.id);
  assert.ok(seeded && Math.abs(JSON.stringify(seeded).length - 1024) < 64, "about 1 KB each");
});

Deno.test("incremental sync returns updates, creations and minimal tombstones", async () => {
  await using google = startFakeGoogle();
  const token = google.issueAccessToken();
  const keep = google.putEvent("primary", { summary: "keep" });
  const edit = google.putEvent("primary", { summary: "before" });
  const drop = google.putEvent("primary", { summary: "drop" });
  const full = await syncRound(google, token, {});
  const mirror = new Map<string, GoogleEvent>();
  applyToMirror(mirror, full.items);

  const edited = google.putEvent("primary", { id: edit.id, summary: "after" });
  assert.equal(edited.sequence, 1);
  assert.notEqual(edited.etag, edit.etag);
  google.deleteEvent("primary", drop.id);
  const created = google.putEvent("primary", { summary: "new" });
  const incremental = await syncRound(google, token, { syncToken: full.syncToken });
  assert.deepEqual(sortedIds(incremental.items), sortedIds([edited, drop, created]));
  const tomb = incremental.items.find((item) => item.id === drop.id);
  assert.deepEqual(Object.keys(tomb ?? {}).sort(), ["etag", "id", "kind", "status"]);
  assert.equal(tomb?.status, "cancelled");
  applyToMirror(mirror, incremental.items);
  assert.deepEqual(sortedIds(mirror.values()), sortedIds(google.liveEvents("primary")));
  assert.equal(mirror.get(edit.id)?.summary, "after");
  assert.ok(mirror.has(keep.id));

  const quiet = await syncRound(google, token, { syncToken: incremental.syncToken });
  assert.deepEqual(quiet.items, []);
});

Deno.test("a change made between pages is not missed by the next incremental sync", async () => {
  await using google = startFakeGoogle({ maxPageSize: 2 });
  const token = google.issueAccessToken();
  const events = Array.from(
    { length: 6 },
    (_, i) => google.putEvent("primary", { summary: `${i}` }),
  );
  const mirror = new Map<string, GoogleEvent>();
  const full = await syncRound(google, token, {}, (page) => {
    if (page !== 1) return;
    google.putEvent("primary", { id: events[0].id, summary: "changed after page 1" });
    google.deleteEvent("primary", events[5].id);
    google.putEvent("primary", { summary: "created mid-sync" });
  });
  applyToMirror(mirror, full.items);
  const incremental = await syncRound(google, token, { syncToken: full.syncToken });
  applyToMirror(mirror, incremental.items);
  assert.deepEqual(sortedIds(mirror.values()), sortedIds(google.liveEvents("primary")));
  assert.equal(mirror.get(events[0].id)?.summary, "changed after page 1");
});

Deno.test("invalidated sync and page tokens answer 410 fullSyncRequired verbatim", async () => {
  await using google = startFakeGoogle({ maxPageSize: 1 });
  const token = google.issueAccessToken();
  google.putEvent("primary");
  google.putEvent("primary");
  const full = await syncRound(google, token, {});
  const firstPage = await getJson(eventsUrl(google, "primary", {}), token);
  google.invalidateSyncTokens("primary");
  const expected = {
    error: {
      errors: [{
        domain: "calendar",
        reason: "fullSyncRequired",
        message: "Sync token is no longer valid, a full sync is required.",
        locationType: "parameter",
        location: "syncToken",
      }],
      code: 410,
      message: "Sync token is no longer valid, a full sync is required.",
    },
  };
  const bySync = await getJson(eventsUrl(google, "primary", { syncToken: full.syncToken }), token);
  assert.equal(bySync.status, 410);
  assert.deepEqual(bySync.body, expected);
  const pageToken = String(firstPage.body.nextPageToken);
  const byPage = await getJson(eventsUrl(google, "primary", { pageToken }), token);
  assert.equal(byPage.status, 410);
  assert.equal((await syncRound(google, token, {})).items.length, 2, "a fresh full sync works");
});

Deno.test("syncToken with a forbidden filter is a 400 and timeMin is fine on full sync", async () => {
  await using google = startFakeGoogle();
  const token = google.issueAccessToken();
  const full = await syncRound(google, token, { timeMin: "2020-01-01T00:00:00Z" });
  const bad = await getJson(
    eventsUrl(google, "primary", { syncToken: full.syncToken, timeMin: "2020-01-01T00:00:00Z" }),
    token,
  );
  assert.equal(bad.status, 400);
  const noOffset = await getJson(
    eventsUrl(google, "primary", { timeMin: "2020-01-01T00:00:00" }),
    token,
  );
  assert.equal(noOffset.status, 400);
  const empty = await getJson(
    eventsUrl(google, "primary", {
      timeMin: "2024-01-02T00:00:00Z",
      timeMax: "2024-01-01T00:00:00Z",
    }),
    token,
  );
  assert.equal(empty.status, 400);
  assert.equal(
    (empty.body.error as { errors: { reason: string }[] }).errors[0].reason,
    "timeRangeEmpty",
  );
});

Deno.test("status faults are provider-shaped, honour times and Retry-After", async () => {
  await using google = startFakeGoogle();
  const token = google.issueAccessToken();
  const url = eventsUrl(google, "primary", {});
  google.setFault({ kind: "status", status: 503, retryAfter: "2" }, { times: 2 });
  const first = await getJson(url, token);
  assert.equal(first.status, 503);
  assert.equal(first.headers.get("retry-after"), "2");
  assert.equal((first.body.error as { code: number }).code, 503);
  assert.equal((await getJson(url, token)).status, 503);
  assert.equal((await getJson(url, token)).status, 200, "fault cleared after two requests");

  google.setFault({ kind: "status", status: 403, reason: "userRateLimitExceeded" });
  const limited = await getJson(url, token);
  const error = limited.body.error as {
    errors: { domain: string; reason: string }[];
    status: string;
  };
  assert.equal(limited.status, 403);
  assert.deepEqual([error.errors[0].domain, error.errors[0].reason], [
    "usageLimits",
    "userRateLimitExceeded",
  ]);
  assert.equal(limited.headers.get("retry-after"), null, "Google sends no Retry-After");
  google.setFault(null);
  assert.equal((await getJson(url, token)).status, 200);
  assert.deepEqual(google.requests.map((r) => r.status), [503, 503, 200, 403, 200]);
});

Deno.test("a fault scoped to a calendar is neither used up nor seen by other calendars", async () => {
  await using google = startFakeGoogle();
  const token = google.issueAccessToken();
  google.addCalendar("other");
  google.addCalendar("target");
  google.setFault({ kind: "status", status: 503 }, { times: 1, calendar: "target" });
  assert.equal((await getJson(eventsUrl(google, "other", {}), token)).status, 200);
  assert.equal((await getJson(eventsUrl(google, "target", {}), token)).status, 503);
  assert.equal((await getJson(eventsUrl(google, "target", {}), token)).status, 200);
});

Deno.test("malformed, invalid_grant and gone faults hit only their endpoints", async () => {
  await using google = startFakeGoogle();
  google.addRefreshToken("rt");
  const token = google.issueAccessToken();
  google.setFault({ kind: "malformed" }, { times: 1 });
  const shape = await getJson(eventsUrl(google, "primary", {}), token);
  assert.equal(shape.status, 200);
  assert.ok(!Array.isArray(shape.body.items));
  google.setFault({ kind: "malformed", variant: "truncated" }, { times: 1 });
  const truncated = await fetch(eventsUrl(google, "primary", {}), {
    headers: { authorization: `Bearer ${token}` },
  });
  await assert.rejects(truncated.json(), SyntaxError);

  google.setFault({ kind: "invalid_grant" }, { times: 1 });
  assert.equal((await getJson(eventsUrl(google, "primary", {}), token)).status, 200);
  const grant = await refresh(google, "rt");
  assert.equal(grant.status, 400);
  assert.equal(grant.body.error, "invalid_grant");

  google.setFault({ kind: "gone" }, { times: 1 });
  const full = await syncRound(google, token, {});
  const gone = await getJson(eventsUrl(google, "primary", { syncToken: full.syncToken }), token);
  assert.equal(gone.status, 410);
  assert.equal(
    (await getJson(eventsUrl(google, "primary", { syncToken: full.syncToken }), token)).status,
    200,
  );
});

Deno.test("a hung request is cut by the client's timeout and close() leaves nothing behind", async () => {
  const google = startFakeGoogle();
  const token = google.issueAccessToken();
  google.setFault({ kind: "hang" });
  await assert.rejects(
    fetch(eventsUrl(google, "primary", {}), {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(100),
    }),
    (error: Error) => error.name === "TimeoutError",
  );
  const pending = fetch(eventsUrl(google, "primary", {}), {
    headers: { authorization: `Bearer ${token}` },
  });
  while (google.countRequests() < 2) await new Promise((resolve) => setTimeout(resolve, 5));
  await google.close();
  await assert.rejects(pending, TypeError);
  assert.deepEqual(google.requests.map((r) => r.status), [0, 0]);
});

Deno.test("refuseConnections makes fetch fail, then listens again on the same port", async () => {
  await using google = startFakeGoogle();
  const token = google.issueAccessToken();
  const url = eventsUrl(google, "primary", {});
  assert.equal((await getJson(url, token)).status, 200);
  await google.refuseConnections(true);
  await assert.rejects(fetch(url), TypeError);
  await google.refuseConnections(false);
  assert.equal((await getJson(url, token)).status, 200);
  assert.ok(google.baseUrl.endsWith(`:${google.port}/calendar/v3`));
});

type Received = { headers: Headers; body: string };

function startReceiver(statuses: number[]) {
  const received: Received[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    received.push({ headers: request.headers, body: await request.text() });
    return new Response(null, { status: statuses.shift() ?? 200 });
  });
  return {
    received,
    url: `http://127.0.0.1:${server.addr.port}/hook`,
    close: () => server.shutdown(),
  };
}

async function watch(google: FakeGoogle, token: string, calendarId: string, body: unknown) {
  const response = await fetch(`${google.baseUrl}/calendars/${calendarId}/events/watch`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

Deno.test("push: sync then exists notifications with Google headers, retried on 503", async () => {
  await using google = startFakeGoogle({ pushRetryBaseMs: 10 });
  const receiver = startReceiver([200, 503, 503]);
  const token = google.issueAccessToken();
  const created = await watch(google, token, "primary", {
    id: "chan-1",
    type: "web_hook",
    address: receiver.url,
    token: "target=calsync",
  });
  assert.equal(created.status, 200);
  assert.equal(created.body.kind, "api#channel");
  assert.equal(typeof created.body.expiration, "string");
  await google.flushDeliveries();
  google.putEvent("primary", { summary: "ping" });
  await google.flushDeliveries();
  await receiver.close();

  assert.equal(receiver.received.length, 4, "sync + exists tried three times");
  const [sync, ...exists] = receiver.received;
  assert.equal(sync.headers.get("x-goog-resource-state"), "sync");
  assert.equal(sync.headers.get("x-goog-message-number"), "1");
  const last = exists[2].headers;
  assert.equal(last.get("x-goog-resource-state"), "exists");
  assert.equal(last.get("x-goog-channel-id"), "chan-1");
  assert.equal(last.get("x-goog-channel-token"), "target=calsync");
  assert.equal(last.get("x-goog-resource-id"), created.body.resourceId);
  assert.equal(last.get("x-goog-resource-uri"), created.body.resourceUri);
  assert.ok(last.get("x-goog-channel-expiration")?.endsWith("GMT"));
  assert.ok(last.get("user-agent")?.startsWith("APIs-Google"));
  assert.equal(last.get("content-length"), "0");
  assert.equal(exists[2].body, "");
  assert.ok(Number(last.get("x-goog-message-number")) > 2, "numbers skip values");
  assert.deepEqual(google.deliveries.map((d) => d.status), [200, 503, 503, 200]);
});

Deno.test("push: duplicate ids, unsupported calendars and channels.stop", async () => {
  await using google = startFakeGoogle({ autoDeliver: false });
  const receiver = startReceiver([]);
  const token = google.issueAccessToken();
  const channel = { id: "chan-2", type: "web_hook", address: receiver.url };
  const first = await watch(google, token, "primary", channel);
  assert.equal(first.status, 200);
  const again = await watch(google, token, "primary", channel);
  assert.equal(again.status, 400);
  assert.equal(again.body.error.errors[0].reason, "channelIdNotUnique");
  google.setPushSupported("holidays", false);
  const holidays = await watch(google, token, "holidays", { ...channel, id: "chan-3" });
  assert.equal(holidays.body.error.errors[0].reason, "pushNotSupportedForRequestedResource");

  const stop = (body: unknown) =>
    fetch(`${google.baseUrl}/channels/stop`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  const stopped = await stop({ id: "chan-2", resourceId: first.body.resourceId });
  assert.equal(stopped.status, 204);
  assert.equal(await stopped.text(), "");
  const unknown = await stop({ id: "chan-2", resourceId: first.body.resourceId });
  assert.equal(unknown.status, 404);
  await unknown.body?.cancel();
  google.putEvent("primary");
  await google.flushDeliveries();
  await receiver.close();
  assert.equal(receiver.received.length, 1, "only the sync message; none after stop");
});
