import { assert, assertEquals, assertStringIncludes } from "../support/assert.ts";
import { captureLogs } from "../support/log_capture.ts";
import {
  ADMIN_TOKEN,
  connectFixture,
  followRedirects,
  storedCounts,
} from "../support/connect_fixture.ts";
import { insertConnection } from "../../src/storage/connections.ts";

const AUTH = { authorization: `Bearer ${ADMIN_TOKEN}` };

Deno.test("Google: the whole flow by following redirects connects the primary calendar", async () => {
  await using t = await connectFixture();
  await using logs = await captureLogs("info");
  t.google.addUser({
    subject: "1045",
    email: "alice@example.com",
    calendars: [
      { id: "alice@example.com", name: "Alice", primary: true },
      { id: "team@group.calendar.google.com", name: "Team", accessRole: "reader" },
    ],
  });
  const result = await followRedirects(`${t.served.url}/connect/google`, AUTH);
  assertEquals(result.hops.map((hop) => hop.status), [302, 302, 200]);
  assertEquals(result.contentType, "text/html; charset=utf-8");
  assertStringIncludes(result.body, "alice@example.com is connected");

  // What the provider was asked for: code + PKCE S256, offline access, consent, the scopes.
  const asked = new URL(result.hops[0].location!);
  assertEquals(asked.origin + asked.pathname, t.google.authUrl);
  const q = asked.searchParams;
  assertEquals(q.get("response_type"), "code");
  assertEquals(q.get("code_challenge_method"), "S256");
  assertEquals(q.get("access_type"), "offline");
  assertEquals(q.get("prompt"), "consent");
  assertEquals(q.get("redirect_uri"), `${t.served.url}/connect/google/callback`);
  assertEquals(
    q.get("scope"),
    "openid email https://www.googleapis.com/auth/calendar.readonly",
  );
  assert((q.get("state") ?? "").length >= 43, "state too short to be unguessable");

  const accounts = await t.db.sql`
    select a.subject, a.email, a.status, a.refresh_token, a.scopes
    from calendar_accounts a`;
  assertEquals(accounts.length, 1);
  assertEquals([accounts[0].subject, accounts[0].email, accounts[0].status], [
    "1045",
    "alice@example.com",
    "active",
  ]);
  assert(t.google.refreshTokensOf("1045").includes(accounts[0].refresh_token));
  const connections = await t.db.sql`
    select external_calendar_id, sync_needed from external_calendar_connections`;
  // "primary" is stored as the real calendar id.
  assertEquals(connections.map((row) => row.external_calendar_id), ["alice@example.com"]);
  assert(logs.lines.some((line) => line.includes("Connected account")));
});

Deno.test("Microsoft: consent with ?calendars=all connects every calendar, subject is tid/oid", async () => {
  await using t = await connectFixture();
  t.microsoft.addUser({
    subject: "00000000-0000-0000-0000-0000000000b0",
    email: "bob@contoso.com",
    tenant: "72f988bf-86f1-41af-91ab-2d7cd011db47",
    calendars: Array.from({ length: 12 }, (_, i) => ({
      id: `AAMkAD-${i}`,
      name: `Calendar ${i}`,
      primary: i === 0,
    })),
  });
  const result = await followRedirects(`${t.served.url}/connect/outlook?calendars=all`, AUTH);
  assertEquals(result.status, 200, result.body);
  const asked = new URL(result.hops[0].location!).searchParams;
  assertEquals(asked.get("scope"), "offline_access Calendars.Read openid email");
  const [account] = await t.db.sql`select subject, email from calendar_accounts`;
  assertEquals(
    account.subject,
    "72f988bf-86f1-41af-91ab-2d7cd011db47/00000000-0000-0000-0000-0000000000b0",
  );
  assertEquals(account.email, "bob@contoso.com");
  // Twelve calendars over two pages of /me/calendars.
  assertEquals((await storedCounts(t.db.sql)).connections, 12);
});

Deno.test("a forged state ends on a clear page with nothing stored and a log line", async () => {
  await using t = await connectFixture();
  await using logs = await captureLogs("info");
  t.google.addUser({ subject: "1", email: "a@example.com" });
  const forged = await followRedirects(
    `${t.served.url}/connect/google/callback?code=4/abc&state=${"x".repeat(43)}`,
  );
  assertEquals(forged.status, 400);
  assertStringIncludes(forged.body, "Invalid sign-in link");
  assertEquals(await storedCounts(t.db.sql), { accounts: 0, connections: 0 });
  assert(logs.lines.some((line) => line.includes('"reason":"forged_state"')), logs.lines.join());
});

Deno.test("a replayed state is refused the second time, and nothing more is stored", async () => {
  await using t = await connectFixture();
  await using logs = await captureLogs("info");
  t.google.addUser({ subject: "1", email: "a@example.com" });
  let callback = "";
  const first = await followRedirects(`${t.served.url}/connect/google`, AUTH, (location) => {
    if (location.includes("/callback")) callback = location;
    return location;
  });
  assertEquals(first.status, 200);
  const replay = await followRedirects(callback);
  assertEquals(replay.status, 400);
  assertStringIncludes(replay.body, "already used");
  assertEquals(await storedCounts(t.db.sql), { accounts: 1, connections: 1 });
  assert(logs.lines.some((line) => line.includes('"reason":"replayed_state"')));
});

Deno.test("denied consent ends on a clear page with nothing stored and a log line", async () => {
  await using t = await connectFixture();
  await using logs = await captureLogs("info");
  t.google.addUser({ subject: "1", email: "a@example.com" });
  t.google.consentAs(null);
  const denied = await followRedirects(`${t.served.url}/connect/google`, AUTH);
  assertEquals(denied.hops.map((hop) => hop.status), [302, 302, 403]);
  assertStringIncludes(new URL(denied.hops[1].location!).search, "error=access_denied");
  assertStringIncludes(denied.body, "Access not granted");
  assertEquals(await storedCounts(t.db.sql), { accounts: 0, connections: 0 });
  assert(logs.lines.some((line) => line.includes('"reason":"access_denied"')));
  const text = await t.metrics.registry.getSingleMetricAsString("calsync_connect_flows_total");
  assertStringIncludes(text, 'outcome="access_denied"');
});

Deno.test("a wrong PKCE verifier is refused by the provider: nothing stored", async () => {
  await using t = await connectFixture();
  await using logs = await captureLogs("info");
  t.google.addUser({ subject: "1", email: "a@example.com" });
  const start = await fetch(`${t.served.url}/connect/google`, {
    headers: { ...AUTH, accept: "application/json" },
  });
  const { url } = await start.json();
  // The verifier held for this flow is not the one its challenge was made from.
  const sealed = await t.deps.secrets.seal("W".repeat(43));
  await t.db.sql`update oauth_connect_states set code_verifier = ${sealed}`;
  const wrong = await followRedirects(url);
  assertEquals(wrong.hops.map((hop) => hop.status), [302, 502]);
  assertStringIncludes(wrong.body, "Sign-in failed");
  assertEquals(await storedCounts(t.db.sql), { accounts: 0, connections: 0 });
  assert(logs.lines.some((line) => line.includes('"reason":"exchange_failed"')));
  assert(!logs.lines.some((line) => line.includes("W".repeat(43))), "the verifier was logged");
});

Deno.test("the start needs the admin token; JSON callers get the URL instead of a redirect", async () => {
  await using t = await connectFixture();
  const refused = await fetch(`${t.served.url}/connect/google`, { redirect: "manual" });
  assertEquals(refused.status, 401);
  await refused.body?.cancel();
  const json = await fetch(`${t.served.url}/connect/google?calendars=none`, {
    headers: { ...AUTH, accept: "application/json" },
  });
  assertEquals(json.status, 200);
  const body = await json.json();
  assert(body.url.startsWith(t.google.authUrl), body.url);
  assert(Date.parse(body.expires_at) > Date.now());
  const unknown = await fetch(`${t.served.url}/connect/nope`, {
    headers: { ...AUTH, accept: "application/json" },
  });
  assertEquals([unknown.status, (await unknown.json()).error], [404, "not_found"]);
  const invalid = await fetch(`${t.served.url}/connect/google?calendars=some`, { headers: AUTH });
  assertEquals([invalid.status, (await invalid.json()).error], [422, "validation_failed"]);
});

Deno.test("an expired state is refused: nothing stored", async () => {
  await using t = await connectFixture();
  t.google.addUser({ subject: "1", email: "a@example.com" });
  const start = await fetch(`${t.served.url}/connect/google`, {
    headers: { ...AUTH, accept: "application/json" },
  });
  const { url } = await start.json();
  await t.db.sql`update oauth_connect_states set expires_at = now() - interval '1 second'`;
  const late = await followRedirects(url);
  assertEquals(late.status, 400);
  assertStringIncludes(late.body, "expired");
  assertEquals(await storedCounts(t.db.sql), { accounts: 0, connections: 0 });
});

Deno.test("consenting again re-authorises the same account and its calendars", async () => {
  await using t = await connectFixture();
  t.google.addUser({ subject: "1", email: "a@example.com" });
  assertEquals((await followRedirects(`${t.served.url}/connect/google`, AUTH)).status, 200);
  await t.db.sql`update calendar_accounts set status = 'reauth_required'`;
  await t.db.sql`update external_calendar_connections set status = 'reauth_required'`;
  assertEquals((await followRedirects(`${t.served.url}/connect/google`, AUTH)).status, 200);
  const accounts = await t.db.sql`select status from calendar_accounts`;
  assertEquals(accounts.map((row) => row.status), ["active"]);
  const connections = await t.db.sql`select status, sync_needed from external_calendar_connections`;
  assertEquals(connections.map((row) => [row.status, row.sync_needed]), [["active", true]]);
});

Deno.test("re-consenting a v1 account gives it its subject; another user is refused for it", async () => {
  await using t = await connectFixture();
  t.google.addUser({ subject: "1", email: "a@example.com" });
  t.google.addUser({ subject: "2", email: "b@example.com" });
  const [provider] = await t.db.sql`select id from calendar_providers where name = 'google'`;
  // As migration 007 leaves a v1 connection: an account without a subject, its calendar kept.
  const { id: connectionId, accountId } = await insertConnection(t.db.sql, {
    providerId: provider.id,
    externalCalendarId: "a@example.com",
    refreshToken: "1//v1-token",
    accountLabel: "a@example.com",
  });
  await t.db.sql`update external_calendar_connections set status = 'reauth_required'`;
  t.google.consentAs("1");
  const started = await fetch(`${t.served.url}/connect/google?account=${accountId}`, {
    headers: { ...AUTH, accept: "application/json" },
  });
  const adopted = await followRedirects((await started.json()).url);
  assertEquals(adopted.status, 200, adopted.body);
  const accounts = await t.db.sql`select id, subject, refresh_token from calendar_accounts`;
  assertEquals(accounts.map((row) => [row.id, row.subject]), [[accountId, "1"]]);
  assert(accounts[0].refresh_token !== "1//v1-token", "the new token was not stored");
  const [connection] = await t.db.sql`
    select id, status from external_calendar_connections`;
  assertEquals([connection.id, connection.status], [connectionId, "active"]);

  // A link made for account "1" that user "2" follows changes nothing.
  t.google.consentAs("2");
  const other = await fetch(`${t.served.url}/connect/google?account=${accountId}`, {
    headers: { ...AUTH, accept: "application/json" },
  });
  const refused = await followRedirects((await other.json()).url);
  assertEquals(refused.status, 409);
  assertStringIncludes(refused.body, "Another account");
  assertEquals(await storedCounts(t.db.sql), { accounts: 1, connections: 1 });
});
