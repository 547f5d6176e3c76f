import { assert, assertEquals, assertStringIncludes } from "../support/assert.ts";
import { consoleFixture, TOKEN } from "../support/console_fixture.ts";
import { consoleLogin } from "../support/console_client.ts";
import { unreachableDatabase } from "../support/unreachable_database.ts";
import { serveApp } from "../support/serve_app.ts";
import { mountConsole } from "../../src/console/console.ts";
import { createApp } from "../../src/http/app.ts";
import { createMetrics } from "../../src/metrics/metrics.ts";

Deno.test("without the token the console shows nothing: every page sends to the login form", async () => {
  await using t = await consoleFixture();
  const id = await t.addConnection("secret-calendar@example.com");
  const wrong = await consoleLogin(t.url, "not-the-admin-token-but-long-enough");
  assertEquals(wrong.cookie, null);
  for (const path of ["/console", "/console/connections", `/console/connections/${id}`]) {
    const response = await wrong.get(path);
    assertEquals([response.status, response.headers.get("location")], [303, "/console/login"]);
    assertEquals(await response.text(), "");
  }
  const refused = await wrong.post("/console/login", { token: "wrong" });
  assertEquals(refused.status, 401);
  assert(!(await refused.text()).includes("secret-calendar"));
  const text = await t.metrics.registry.getSingleMetricAsString(
    "calsync_admin_api_rejections_total",
  );
  assert(/reason="console_wrong"\} 2/.test(text), text);
});

Deno.test("login sets an HttpOnly, SameSite=Strict, expiring cookie scoped to /console", async () => {
  await using t = await consoleFixture();
  const client = await consoleLogin(t.url, TOKEN);
  const cookie = client.setCookie ?? "";
  assertStringIncludes(cookie, "HttpOnly");
  assertStringIncludes(cookie, "SameSite=Strict");
  assertStringIncludes(cookie, "Path=/console");
  assertStringIncludes(cookie, "Expires=");
  assert(!cookie.includes(TOKEN), "the cookie carries the token");
  assert(!cookie.includes("Secure"), "Secure on plain http breaks the login");
  const overview = await client.get("/console");
  assertEquals(overview.status, 200);
  assertStringIncludes(overview.headers.get("content-security-policy") ?? "", "script-src 'self'");
  assertStringIncludes(await overview.text(), "Connections by state");
  // Behind a TLS-terminating proxy the cookie is Secure.
  const proxied = await fetch(`${t.url}/console/login`, {
    method: "POST",
    redirect: "manual",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      "x-forwarded-proto": "https",
    },
    body: new URLSearchParams({ token: TOKEN }),
  });
  await proxied.body?.cancel();
  assertStringIncludes(proxied.headers.get("set-cookie") ?? "", "Secure");
});

Deno.test("an action without the session's CSRF token is refused with 403 and changes nothing", async () => {
  await using t = await consoleFixture();
  const id = await t.addConnection("cal-csrf");
  await t.db.sql`update external_calendar_connections set sync_needed = false,
    sync_requested_seq = 5 where id = ${id}`;
  const client = await consoleLogin(t.url, TOKEN);
  const path = `/console/connections/${id}/actions/sync`;
  const missing = await client.post(path, {});
  assertEquals(missing.status, 403);
  await missing.body?.cancel();
  const forged = await client.post(path, { csrf: "forged-token" });
  assertEquals(forged.status, 403);
  await forged.body?.cancel();
  const [row] = await t.db.sql<{ sync_requested_seq: string }[]>`
    select sync_requested_seq from external_calendar_connections where id = ${id}`;
  assertEquals(Number(row.sync_requested_seq), 5);
  // The same form with the token goes through.
  const done = await client.post(path, { csrf: await client.csrf() });
  assertEquals(done.status, 303);
  await done.body?.cancel();
  const [after] = await t.db.sql<{ sync_requested_seq: string }[]>`
    select sync_requested_seq from external_calendar_connections where id = ${id}`;
  assertEquals(Number(after.sync_requested_seq), 6);
  // Another session's token is not this session's.
  const other = await consoleLogin(t.url, TOKEN);
  const crossed = await other.post(path, { csrf: await client.csrf() });
  assertEquals(crossed.status, 403);
  await crossed.body?.cancel();
});

Deno.test("logout ends the session: the old cookie no longer opens a page", async () => {
  await using t = await consoleFixture();
  const client = await consoleLogin(t.url, TOKEN);
  const out = await client.post("/console/logout", { csrf: await client.csrf() });
  assertEquals(out.status, 303);
  await out.body?.cancel();
  const after = await client.get("/console");
  assertEquals(after.status, 303);
  await after.body?.cancel();
});

Deno.test("an expired session cookie is refused", async () => {
  let now = Date.now();
  await using t = await consoleFixture({ sessionTtlMs: 60_000, now: () => now });
  const client = await consoleLogin(t.url, TOKEN);
  const before = await client.get("/console");
  assertEquals(before.status, 200);
  await before.body?.cancel();
  now += 61_000;
  const after = await client.get("/console");
  assertEquals(after.status, 303);
  await after.body?.cancel();
});

Deno.test("provider text is escaped: an event titled <script> renders as text", async () => {
  await using t = await consoleFixture();
  const id = await t.addConnection(`<img src=x onerror=alert(1)>`);
  const starts = new Date();
  await t.db.sql`insert into external_calendar_events (connection_id, external_event_id, status,
      title, starts_at, ends_at, raw, occurrence_kind)
    values (${id}, 'e1', 'confirmed', '<script>alert("owned")</script>', ${starts},
      ${new Date(starts.getTime() + 3_600_000)}, '{}'::jsonb, 'single')`;
  await t.db.sql`update external_calendar_connections set last_error = ${
    t.db.sql.json({ kind: "provider_rejected", message: "<b>bold</b>", refresh_token: "rt-x" })
  } where id = ${id}`;
  const client = await consoleLogin(t.url, TOKEN);
  const page = await (await client.get(`/console/connections/${id}`)).text();
  assert(!page.includes("<script>alert"), "the title was not escaped");
  assertStringIncludes(page, "&lt;script&gt;alert(&quot;owned&quot;)&lt;/script&gt;");
  assert(!page.includes("<img src=x"), "the calendar id was not escaped");
  assert(!page.includes("<b>bold</b>"), "the error message was not escaped");
  assert(!page.includes("rt-x") && !page.includes("rt-secret"), "a refresh token is on the page");
  const list = await (await client.get("/console/connections")).text();
  assert(!list.includes("<img src=x"), "the list does not escape the calendar id");
});

Deno.test("with the database down the overview says so instead of failing, and pages answer 503", async () => {
  await using t = await consoleFixture();
  const client = await consoleLogin(t.url, TOKEN);
  await using down = unreachableDatabase();
  t.database.sql = down.sql;
  const overview = await client.get("/console");
  assertEquals(overview.status, 200);
  assertStringIncludes(await overview.text(), "Database down");
  const fragment = await client.get("/console/overview/fragment");
  assertStringIncludes(await fragment.text(), "Database down");
  const list = await client.get("/console/connections");
  assertEquals(list.status, 503);
  assertStringIncludes(await list.text(), "The database does not answer");
  t.database.sql = null;
  assertStringIncludes(await (await client.get("/console")).text(), "not open yet");
  t.database.sql = t.db.sql;
  assertStringIncludes(await (await client.get("/console")).text(), "database up");
});

Deno.test("each action needs its state: a confirm form first, and a refusal where it does not apply", async () => {
  await using t = await consoleFixture();
  const id = await t.addConnection("cal-actions");
  const client = await consoleLogin(t.url, TOKEN);
  const csrf = await client.csrf();
  // Releasing applies only to held deletions: refused for an active connection.
  const refused = await client.post(`/console/connections/${id}/actions/release-deletions`, {
    csrf,
  });
  assertEquals(refused.status, 303);
  await refused.body?.cancel();
  const location = new URL(refused.headers.get("location") ?? "", t.url);
  assertStringIncludes(location.searchParams.get("done") ?? "", "does not apply");
  // A disabled connection is re-enabled through its confirm form.
  await t.db.sql`update external_calendar_connections set status = 'disabled', error_count = 5
    where id = ${id}`;
  const form = await (await client.get(`/console/connections/${id}/actions/re-enable`)).text();
  assertStringIncludes(form, "Confirm: Re-enable");
  assertStringIncludes(form, `name="csrf" value="${csrf}"`);
  const done = await client.post(`/console/connections/${id}/actions/re-enable`, { csrf });
  assertEquals(done.status, 303);
  await done.body?.cancel();
  const [row] = await t.db.sql<{ status: string; error_count: number }[]>`
    select status, error_count from external_calendar_connections where id = ${id}`;
  assertEquals([row.status, row.error_count], ["active", 0]);
  const text = await t.metrics.registry.getSingleMetricAsString("calsync_console_actions_total");
  assert(/action="re-enable",outcome="done"\} 1/.test(text), text);
  assert(/action="release-deletions",outcome="refused"\} 1/.test(text), text);
  const unavailable = await client.get("/console/subscribers/some-id/pause");
  assertEquals(unavailable.status, 501);
  assertStringIncludes(await unavailable.text(), "not");
});

Deno.test("without an admin token the console is not mounted: /console is a 404 like any path", async () => {
  const metrics = createMetrics();
  const app = createApp({
    metrics,
    readiness: () => Promise.resolve({ ready: true }),
    maxBodyBytes: 4_096,
    routes: (app) =>
      mountConsole(app, {
        token: null,
        sql: () => null,
        sessionTtlMs: 60_000,
        secureCookies: false,
        drillReportDir: null,
        databaseDeadlineMs: 1_000,
      }),
  });
  const served = await serveApp(app);
  try {
    for (const path of ["/console", "/console/login", "/console/assets/console.js"]) {
      const response = await fetch(`${served.url}${path}`);
      assertEquals(response.status, 404, path);
      await response.body?.cancel();
    }
  } finally {
    await served.close();
  }
});

Deno.test("the drill page shows the newest report.html of the configured folder, script-free", async () => {
  const dir = await Deno.makeTempDir({ prefix: "calsync-console-reports-" });
  try {
    await Deno.mkdir(`${dir}/old`);
    await Deno.mkdir(`${dir}/new`);
    await Deno.writeTextFile(`${dir}/old/report.html`, "<h1>old report</h1>");
    await Deno.utime(`${dir}/old/report.html`, new Date(1_000_000), new Date(1_000_000));
    await Deno.writeTextFile(`${dir}/new/report.html`, "<h1>new report</h1>");
    await using t = await consoleFixture({ drillReportDir: dir });
    const client = await consoleLogin(t.url, TOKEN);
    const page = await (await client.get("/console/drill")).text();
    assertStringIncludes(page, `${dir}/new/report.html`);
    const report = await client.get("/console/drill/report.html");
    assertEquals(await report.text(), "<h1>new report</h1>");
    const csp = report.headers.get("content-security-policy") ?? "";
    assert(!csp.includes("script-src"), csp);
    assertStringIncludes(csp, "default-src 'none'");
    assertEquals(report.headers.get("x-frame-options"), "SAMEORIGIN");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
