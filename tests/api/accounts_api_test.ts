import { assert, assertEquals, assertStringIncludes } from "../support/assert.ts";
import {
  ADMIN_TOKEN,
  type ConnectFixture,
  connectFixture,
  followRedirects,
  storedCounts,
} from "../support/connect_fixture.ts";

const HEADERS = { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" };

/** Calls the admin API; returns status and parsed body (null for an empty body). */
async function call(
  t: ConnectFixture,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = HEADERS,
) {
  const response = await fetch(`${t.served.url}/api/v1${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return {
    status: response.status,
    type: response.headers.get("content-type"),
    // deno-lint-ignore no-explicit-any
    body: (text === "" ? null : JSON.parse(text)) as any,
  };
}

/** A user connected through connect-url, as an embedding application would do it. */
async function connectedAccount(t: ConnectFixture): Promise<string> {
  t.google.addUser({
    subject: "42",
    email: "dana@example.com",
    calendars: [
      { id: "dana@example.com", name: "Dana", primary: true },
      { id: "team", name: "Team", accessRole: "writer" },
      { id: "rota", name: "Rota", accessRole: "reader" },
    ],
  });
  const started = await call(t, "GET", "/connect-url/google");
  assertEquals(started.status, 200, JSON.stringify(started.body));
  assert(started.body.url.startsWith(t.google.authUrl));
  const page = await followRedirects(started.body.url);
  assertEquals(page.status, 200, page.body);
  const list = await call(t, "GET", "/accounts");
  assertEquals(list.body.items.length, 1);
  return list.body.items[0].id;
}

Deno.test("admin API: no token or a wrong one is 401 on every account and connection route", async () => {
  await using t = await connectFixture();
  for (
    const [method, path] of [
      ["GET", "/accounts"],
      ["GET", `/accounts/${crypto.randomUUID()}`],
      ["DELETE", `/accounts/${crypto.randomUUID()}`],
      ["GET", "/connections"],
      ["POST", "/connections"],
      ["POST", `/connections/${crypto.randomUUID()}/sync`],
      ["GET", "/connect-url/google"],
    ]
  ) {
    const refusals: Record<string, string>[] = [{}, {
      authorization: "Bearer not-the-token-at-all-000000",
    }];
    for (const headers of refusals) {
      const answer = await call(t, method, path, undefined, headers);
      assertEquals([answer.status, answer.body.error], [401, "unauthorized"], `${method} ${path}`);
    }
  }
  assertEquals(await storedCounts(t.db.sql), { accounts: 0, connections: 0 });
});

Deno.test("admin API: accounts, calendars, connections and sync requests, each route", async () => {
  await using t = await connectFixture();
  const accountId = await connectedAccount(t);

  const account = await call(t, "GET", `/accounts/${accountId}`);
  assertEquals(account.status, 200);
  assertEquals([account.body.email, account.body.subject, account.body.connections], [
    "dana@example.com",
    "42",
    1,
  ]);
  const [{ refresh_token: token }] = await t.db.sql`select refresh_token from calendar_accounts`;
  assert(!JSON.stringify(account.body).includes(token), "an answer carried the refresh token");
  assert(!("refresh_token" in account.body));

  const calendars = await call(t, "GET", `/accounts/${accountId}/calendars`);
  assertEquals(
    calendars.body.items.map((c: Record<string, unknown>) => [c.id, c.primary, c.connected]),
    [["dana@example.com", true, true], ["team", false, false], ["rota", false, false]],
  );

  const created = await call(t, "POST", "/connections", { account_id: accountId, calendar: "all" });
  assertEquals(created.status, 201, JSON.stringify(created.body));
  assertEquals(
    created.body.items.map((c: { external_calendar_id: string }) => c.external_calendar_id).sort(),
    ["rota", "team"],
  );
  const again = await call(t, "POST", "/connections", { account_id: accountId, calendar: "team" });
  assertEquals([again.status, again.body.error], [409, "conflict"]);

  // Pages of one by cursor: every connection once, with the drill's state columns.
  const seen: string[] = [];
  let cursor: string | null = null;
  do {
    const query: string = `/connections?limit=1&account=${accountId}` +
      (cursor ? `&cursor=${cursor}` : "");
    const page = await call(t, "GET", query);
    assertEquals(page.status, 200);
    for (const item of page.body.items) {
      for (const column of ["error_count", "last_error", "backoff_until", "sync_needed"]) {
        assert(column in item, `missing ${column}`);
      }
      seen.push(item.external_calendar_id);
    }
    cursor = page.body.next_cursor;
  } while (cursor !== null);
  assertEquals(seen.sort(), ["dana@example.com", "rota", "team"]);

  const team = created.body.items.find((c: { external_calendar_id: string }) =>
    c.external_calendar_id === "team"
  );
  const synced = await call(t, "POST", `/connections/${team.id}/sync`, { full: true });
  assertEquals([synced.status, synced.body.sync_needed], [202, true]);
  const [row] = await t.db.sql`
    select full_sync_requested_seq is not null as full from external_calendar_connections
    where id = ${team.id}`;
  assert(row.full, "the full sync was not requested");
  const plain = await fetch(`${t.served.url}/api/v1/connections/${team.id}/sync`, {
    method: "POST",
    headers: { authorization: HEADERS.authorization },
  });
  assertEquals(plain.status, 202);
  await plain.body?.cancel();

  assertEquals((await call(t, "GET", `/connections/${team.id}`)).body.id, team.id);
  assertEquals((await call(t, "DELETE", `/connections/${team.id}`)).status, 204);
  assertEquals((await call(t, "GET", `/connections/${team.id}`)).status, 404);
  assertEquals((await call(t, "DELETE", `/connections/${team.id}`)).status, 404);

  assertEquals((await call(t, "DELETE", `/accounts/${accountId}`)).status, 204);
  assertEquals((await call(t, "GET", `/accounts/${accountId}`)).status, 404);
  assertEquals(await storedCounts(t.db.sql), { accounts: 0, connections: 0 });

  const document = await call(t, "GET", "/openapi.json");
  for (
    const path of [
      "/api/v1/accounts",
      "/api/v1/accounts/{id}",
      "/api/v1/accounts/{id}/calendars",
      "/api/v1/connect-url/{provider}",
      "/api/v1/connections",
      "/api/v1/connections/{id}",
      "/api/v1/connections/{id}/sync",
    ]
  ) assert(path in document.body.paths, `${path} is not documented`);
  assertEquals(document.body.components.schemas.Account.type, "object");
});

Deno.test("admin API: invalid input is a 422 or 400 problem naming the field", async () => {
  await using t = await connectFixture();
  const cases: [string, string, unknown, number, string][] = [
    ["GET", "/accounts/not-a-uuid", undefined, 422, "validation_failed"],
    ["GET", "/accounts?limit=0", undefined, 422, "validation_failed"],
    ["GET", "/accounts?cursor=forged", undefined, 400, "invalid_cursor"],
    ["GET", "/connections?account=nope", undefined, 422, "validation_failed"],
    ["POST", "/connections", { calendar: "" }, 422, "validation_failed"],
    ["POST", `/connections/${crypto.randomUUID()}/sync`, { full: "yes" }, 422, "validation_failed"],
    ["GET", "/connect-url/google?calendars=some", undefined, 422, "validation_failed"],
    ["GET", `/accounts/${crypto.randomUUID()}`, undefined, 404, "not_found"],
    ["GET", "/connect-url/nope", undefined, 404, "not_found"],
    ["POST", "/connections", { account_id: crypto.randomUUID(), calendar: "x" }, 404, "not_found"],
    ["POST", `/connections/${crypto.randomUUID()}/sync`, {}, 404, "not_found"],
  ];
  for (const [method, path, body, status, error] of cases) {
    const answer = await call(t, method, path, body);
    assertEquals([answer.status, answer.body.error], [status, error], `${method} ${path}`);
    assertEquals(answer.type, "application/problem+json");
  }
  const invalid = await call(t, "POST", "/connections", { calendar: "" });
  assertEquals(
    invalid.body.issues.map((issue: { path: string }) => issue.path).sort(),
    ["account_id", "calendar"],
  );
  const malformed = await fetch(`${t.served.url}/api/v1/connections`, {
    method: "POST",
    headers: HEADERS,
    body: "{",
  });
  assertStringIncludes(await malformed.text(), "malformed_json");
});
