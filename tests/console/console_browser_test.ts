/**
 * The console in a real headless Chromium against a real daemon subprocess, fake Google and a
 * scratch PostgreSQL: what an operator does at 3 a.m. Skipped, with a message, without Chromium.
 */
import { join } from "node:path";
import type { Page } from "playwright-core";
import { assert, assertEquals } from "../support/assert.ts";
import {
  accessibilityProblems,
  CHROMIUM,
  chromiumPresent,
  launchBrowser,
} from "../support/browser.ts";
import { sampleDrillReport } from "../support/drill_report_sample.ts";
import { renderHtmlReport } from "../../drills/drill/report_html.ts";
import { insertProvider } from "../../src/storage/calendar_providers.ts";
import { insertConnection } from "../../src/storage/connections.ts";
import { startDaemon } from "../../testkit/daemon.ts";
import { startFakeGoogle } from "../../testkit/fake_google.ts";
import { createMigratedDatabase } from "../../testkit/scratch_database.ts";
import { waitFor } from "../../testkit/wait.ts";

const TOKEN = "browser-console-token-0123456789abcdef";
const PRESENT = chromiumPresent();
if (!PRESENT) {
  console.warn(
    `[console browser tests] skipped: no Chromium at ${CHROMIUM} (apt-get install chromium)`,
  );
}

async function checkAccessibility(page: Page, where: string): Promise<void> {
  assertEquals(await accessibilityProblems(page), [], `accessibility of ${where}`);
}

async function setUp() {
  const db = await createMigratedDatabase("console_browser");
  const google = startFakeGoogle();
  google.addRefreshToken("rt-1");
  const failing = `failing-${crypto.randomUUID().slice(0, 6)}`;
  const guarded = `guarded-${crypto.randomUUID().slice(0, 6)}`;
  google.addCalendar(failing);
  google.addCalendar(guarded);
  const start = new Date(Date.now() + 60_000).toISOString().replace(/\.\d+Z$/, "Z");
  google.putEvent(failing, {
    summary: '<script>alert("owned")</script>',
    start: { dateTime: start, timeZone: "UTC" },
  });
  const doomed = [1, 2, 3].map((n) => google.putEvent(guarded, { summary: `Doomed ${n}` }).id);
  google.putEvent(guarded, { summary: "Survivor" });
  // The failing calendar's listing answers 503 until the test says the provider recovered.
  google.setFault({ kind: "status", status: 503 }, { target: "api", calendar: failing });
  const { id: providerId } = await insertProvider(db.sql, {
    kind: "google",
    name: "google",
    allowlisted: true,
  });
  const add = async (calendar: string) =>
    (await insertConnection(db.sql, {
      providerId,
      externalCalendarId: calendar,
      refreshToken: "rt-1",
      accountLabel: null,
    })).id;
  const failingId = await add(failing);
  const guardedId = await add(guarded);
  const reports = await Deno.makeTempDir({ prefix: "calsync-console-drill-" });
  await Deno.writeTextFile(
    join(reports, "report.html"),
    await renderHtmlReport(sampleDrillReport()),
  );
  const daemon = await startDaemon({
    DATABASE_URL: db.url,
    CALSYNC_ADMIN_TOKEN: TOKEN,
    CALSYNC_DRILL_REPORT_DIR: reports,
    GOOGLE_API_BASE_URL: google.baseUrl,
    GOOGLE_TOKEN_URL: google.tokenUrl,
    // A backoff far longer than the test: only the operator's action can end it.
    SYNC_BACKOFF_BASE_MS: "600000",
    SYNC_BACKOFF_MAX_MS: "600000",
    SCHEDULER_POLL_INTERVAL_MS: "200",
    SYNC_DELETE_GUARD_MIN: "1",
    SYNC_DELETE_GUARD_PERCENT: "50",
    LOG_LEVEL: "info",
  }, { readiness: "scheduler", clearEnv: true });
  return {
    db,
    google,
    daemon,
    failingId,
    guardedId,
    guarded,
    doomed,
    reports,
    async close() {
      await daemon.stop();
      await google.close();
      await db.close();
      await Deno.remove(reports, { recursive: true });
    },
  };
}

async function logIn(page: Page, base: string, token: string): Promise<void> {
  await page.goto(`${base}/console/login`);
  await checkAccessibility(page, "the login page");
  await page.getByLabel("Admin token").fill(token);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.waitForLoadState("load");
}

Deno.test({
  name: "browser: log in, see a 503 backoff, sync after recovery, release held deletions",
  ignore: !PRESENT,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const env = await setUp();
    const browser = await launchBrowser();
    const shots = await Deno.makeTempDir({ prefix: "calsync-console-screenshots-" });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const dialogs: string[] = [];
      page.on("dialog", (dialog) => {
        dialogs.push(dialog.message());
        void dialog.dismiss();
      });
      const base = env.daemon.url;

      // The wrong token: the login form again, and no page behind it.
      await logIn(page, base, "not-the-token-but-long-enough-to-try");
      assertEquals(await page.locator("h1").textContent(), "Log in");
      await page.goto(`${base}/console/connections/${env.failingId}`);
      assertEquals(new URL(page.url()).pathname, "/console/login");
      assert(!(await page.content()).includes(env.failingId), "a connection id leaked");

      await logIn(page, base, TOKEN);
      assertEquals(await page.locator("h1").textContent(), "Overview");
      // The overview refreshes by itself: the 503 shows up as one connection backing off.
      await page.locator('#overview a[href*="state=backing_off"]').waitFor({ timeout: 30_000 });
      await checkAccessibility(page, "the overview");
      await page.screenshot({ path: join(shots, "overview.png"), fullPage: true });

      await page.goto(`${base}/console/connections?state=backing_off`);
      await checkAccessibility(page, "the connections list");
      await page.screenshot({ path: join(shots, "connections.png"), fullPage: true });
      await page.getByRole("link", { name: env.failingId }).click();
      await page.locator("#connection-state .state-backing_off").waitFor();
      assert((await page.locator("pre").textContent())?.includes("provider_unavailable"));
      await checkAccessibility(page, "a connection page");

      // The provider recovers; the operator syncs now, past the backoff.
      env.google.setFault(null, { target: "api" });
      await page.getByRole("link", { name: "Sync now" }).click();
      await checkAccessibility(page, "the confirm page");
      await page.getByLabel(/Also go past the backoff/).check();
      await page.getByRole("button", { name: "Confirm: Sync now" }).click();
      await page.getByRole("status").waitFor();
      await page.locator("#connection-state .state-active").waitFor({ timeout: 30_000 });
      // The mirrored event titled <script> is text in the week view, and nothing ran.
      await page.reload();
      await page.getByText('<script>alert("owned")</script>').waitFor();
      await page.screenshot({ path: join(shots, "connection.png"), fullPage: true });

      // A CSRF-less POST from the signed-in page is refused.
      const status = await page.evaluate<number>(
        `fetch("/console/connections/${env.failingId}/actions/sync", { method: "POST" })
          .then((r) => r.status)`,
      );
      assertEquals(status, 403);

      // The guarded calendar loses 3 of 4 events at once: the guard holds the deletions.
      await waitFor(async () => {
        const [row] = await env.db.sql`select last_success_at from external_calendar_connections
          where id = ${env.guardedId}`;
        return row.last_success_at !== null;
      }, { timeoutMs: 20_000 });
      for (const id of env.doomed) env.google.deleteEvent(env.guarded, id);
      await page.goto(`${base}/console/connections/${env.guardedId}/actions/sync`);
      await page.getByRole("button", { name: "Confirm: Sync now" }).click();
      await page.locator("#connection-state .state-deletions_held").waitFor({ timeout: 30_000 });
      await page.reload();
      await page.getByRole("link", { name: "Release or discard held deletions" }).click();
      await checkAccessibility(page, "the release form");
      await page.screenshot({ path: join(shots, "release.png"), fullPage: true });
      await page.getByLabel("Release: delete the held rows").check();
      await page.getByRole("button", { name: /Confirm: Release/ }).click();
      await page.getByRole("status").filter({ hasText: "Deleted 3 of 3 held rows" }).waitFor();
      await page.locator("#connection-state .state-active").waitFor({ timeout: 30_000 });
      const [{ n }] = await env.db.sql<{ n: number }[]>`select count(*)::int as n
        from external_calendar_events where connection_id = ${env.guardedId}`;
      assertEquals(n, 1);
      const actions = env.daemon.logs.filter((l) =>
        typeof l.message === "string" && l.message.startsWith("Console action")
      );
      assert(actions.length >= 3, `actions logged: ${actions.length}`);
      assert(actions.every((l) => String(l.session).startsWith("console:")), "who did it");

      // The drill report, framed by the console, and its timeline on its own.
      await page.goto(`${base}/console/drill`);
      await checkAccessibility(page, "the drill page");
      await page.frameLocator("iframe.report").locator("svg.timeline").first().waitFor();
      await page.goto(`${base}/console/drill/report.html`);
      await page.locator("svg.timeline").first().waitFor();
      await page.locator("svg.timeline").first().screenshot({ path: join(shots, "timeline.png") });
      assertEquals(dialogs, [], "a script from provider text ran");
      console.log(`[console browser tests] screenshots in ${shots}`);
    } finally {
      await browser.close();
      await env.close();
    }
  },
});
