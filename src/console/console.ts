/** @module Mounts the operator console under `/console`, behind the admin token. */
import { type Context, Hono } from "hono";
import { html } from "hono/html";
import { logger } from "../log/setup.ts";
import type { Metrics } from "../metrics/metrics.ts";
import type { Sql } from "../storage/client.ts";
import { isUuid } from "../storage/connection_views.ts";
import type { ConnectionStatusRow } from "../storage/connections.ts";
import { CONSOLE_CSS, CONSOLE_JS } from "./console_assets.ts";
import { type ConsoleEnv, mountLogin, requireSession } from "./console_auth.ts";
import { CONSOLE_PREFIX, type Html, page } from "./console_layout.ts";
import { createSessionKeeper, sessionKeyFromToken, sessionLabel } from "./console_session.ts";
import {
  ACTION_NAMES,
  type ActionName,
  ACTIONS,
  confirmForm,
  performAction,
} from "./connection_actions.ts";
import { connectionBody, findConnection, stateFragment } from "./connection_page.ts";
import { connectionsBody, parseFilters } from "./connections_page.ts";
import { drillBody, latestReport } from "./drill_report_page.ts";
import { driftRepairs, loadOverview, overviewBody, renderOverview } from "./overview.ts";
import { subscriberActionsUnavailable } from "./subscriber_section.ts";

const log = logger("console");

/** What the console needs from the daemon. */
export type ConsoleDeps = {
  /** The admin token; null: the console is off (404, like any unknown path). */
  token: string | null;
  sql: () => Sql | null;
  metrics?: Metrics;
  sessionTtlMs: number;
  /** `Secure` cookies even when requests arrive over plain http (https public URL). */
  secureCookies: boolean;
  drillReportDir: string | null;
  /** How long an overview read may take before the page says the database is down. */
  databaseDeadlineMs: number;
  now?: () => number;
};

// same-origin, not no-referrer: with no-referrer browsers send `Origin: null` on form posts,
// which the cross-origin check must refuse.
const HEADERS: Record<string, string> = {
  "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; " +
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-src 'self'; " +
    "frame-ancestors 'none'; base-uri 'none'",
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  "referrer-policy": "same-origin",
  "cache-control": "no-store",
};

// The drill report is a static document: styles inline, no script at all, framed by the console.
const REPORT_HEADERS: Record<string, string> = {
  ...HEADERS,
  "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; " +
    "frame-ancestors 'self'",
  "x-frame-options": "SAMEORIGIN",
};

type Ctx = Context<ConsoleEnv>;

function databaseDown(c: Ctx, csrf: string): Response | Promise<Response> {
  return c.html(
    page(
      "Database down",
      html`<p class="alert" role="alert">The database does not answer; the daemon keeps
      retrying. <a href="${CONSOLE_PREFIX}">Overview</a></p>`,
      { csrf, section: "overview" },
    ),
    503,
  );
}

/** Runs a page's database work; a database failure becomes the "database down" page. */
async function withDatabase(
  c: Ctx,
  deps: ConsoleDeps,
  render: (sql: Sql) => Promise<Response>,
): Promise<Response> {
  const sql = deps.sql();
  const csrf = c.get("session").csrf;
  if (sql === null) return await databaseDown(c, csrf);
  try {
    return await render(sql);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    // SQLSTATE classes 08 (connection) and 57 (shutdown), and the driver's own connect errors.
    if (/^(08|57)|^CONNECT|^ECONN|CONNECTION/.test(String(code ?? ""))) {
      log.error("Console page {path}: the database is down", {
        kind: "database",
        path: c.req.path,
        error_message: (error as Error).message,
      });
      return await databaseDown(c, csrf);
    }
    throw error;
  }
}

function notFound(c: Ctx, what: string): Response | Promise<Response> {
  return c.html(
    page("Not found", html`<p>${what}</p>`, {
      csrf: c.get("session").csrf,
      section: "connections",
    }),
    404,
  );
}

function mountPages(router: Hono<ConsoleEnv>, deps: ConsoleDeps, now: () => number): void {
  const show = (c: Ctx, title: string, body: Html, section: "overview" | "connections" | "drill") =>
    c.html(page(title, body, { csrf: c.get("session").csrf, section }));
  router.get("/", async (c) => {
    const fragment = renderOverview(
      await loadOverview(deps.sql(), deps.databaseDeadlineMs),
      now(),
      await driftRepairs(deps.metrics),
    );
    return show(c, "Overview", overviewBody(fragment), "overview");
  });
  router.get("/overview/fragment", async (c) =>
    c.html(renderOverview(
      await loadOverview(deps.sql(), deps.databaseDeadlineMs),
      now(),
      await driftRepairs(deps.metrics),
    )));
  router.get(
    "/connections",
    (c) =>
      withDatabase(c, deps, async (sql) =>
        show(
          c,
          "Connections",
          await connectionsBody(sql, parseFilters(c.req.query()), now()),
          "connections",
        )),
  );
  router.get("/connections/:id", (c) =>
    withDatabase(c, deps, async (sql) => {
      const id = c.req.param("id");
      const row = isUuid(id) ? await findConnection(sql, id) : null;
      if (row === null) return notFound(c, `No connection "${id}".`);
      const week = /^\d{4}-\d{2}-\d{2}$/.test(c.req.query("week") ?? "")
        ? new Date(`${c.req.query("week")}T00:00:00Z`)
        : new Date(now());
      const flash = c.req.query("done") ?? null;
      const body = await connectionBody(sql, row, { now: now(), week, flash });
      return show(c, `Connection ${row.external_calendar_id}`, body, "connections");
    }));
  router.get("/connections/:id/state", (c) =>
    withDatabase(c, deps, async (sql) => {
      const id = c.req.param("id");
      const row = isUuid(id) ? await findConnection(sql, id) : null;
      if (row === null) return notFound(c, `No connection "${id}".`);
      return c.html(stateFragment(row, now()));
    }));
  router.get("/drill", async (c) => {
    const dir = deps.drillReportDir;
    return show(c, "Drill report", drillBody(dir, dir ? await latestReport(dir) : null), "drill");
  });
  router.get("/drill/report.html", async (c) => {
    const found = deps.drillReportDir ? await latestReport(deps.drillReportDir) : null;
    if (found === null) return notFound(c, "No drill report yet.");
    const response = c.html(await Deno.readTextFile(found.path));
    for (const [name, value] of Object.entries(REPORT_HEADERS)) {
      response.headers.set(name, value);
    }
    return response;
  });
  router.all("/subscribers/*", (c) =>
    c.html(
      page("Not available", subscriberActionsUnavailable(), {
        csrf: c.get("session").csrf,
        section: "overview",
      }),
      501,
    ));
}

function mountActions(router: Hono<ConsoleEnv>, deps: ConsoleDeps, now: () => number): void {
  type Found = { row: ConnectionStatusRow; action: ActionName } | { error: string };
  const lookup = async (c: Ctx, sql: Sql): Promise<Found> => {
    const id = c.req.param("id") ?? "";
    const action = c.req.param("action") as ActionName;
    if (!ACTION_NAMES.includes(action)) return { error: `No action "${action}".` };
    const row = isUuid(id) ? await findConnection(sql, id) : null;
    if (row === null) return { error: `No connection "${id}".` };
    return { row, action };
  };
  router.get("/connections/:id/actions/:action", (c) =>
    withDatabase(c, deps, async (sql) => {
      const found = await lookup(c, sql);
      if ("error" in found) return notFound(c, found.error);
      const { row, action } = found;
      const body = ACTIONS[action].applies(row, now())
        ? confirmForm(action, row, { csrf: c.get("session").csrf, now: now() })
        : html`<p>This action does not apply to the connection in its state (${row.status}).</p>`;
      return c.html(page(`${ACTIONS[action].label}: ${row.external_calendar_id}`, body, {
        csrf: c.get("session").csrf,
        section: "connections",
      }));
    }));
  router.post("/connections/:id/actions/:action", (c) =>
    withDatabase(c, deps, async (sql) => {
      const found = await lookup(c, sql);
      if ("error" in found) return notFound(c, found.error);
      const { row, action } = found;
      const who = sessionLabel(c.get("session"));
      const fields = { action, connection_id: row.id, session: who };
      if (!ACTIONS[action].applies(row, now())) {
        deps.metrics?.consoleActions.inc({ action, outcome: "refused" });
        log.warn(
          "Console action {action} on connection {connection_id} by {session} refused: " +
            "it does not apply in state {status}",
          { ...fields, status: row.status },
        );
        return c.redirect(
          `${CONSOLE_PREFIX}/connections/${row.id}?${new URLSearchParams({
            done: `${ACTIONS[action].label} does not apply in state ${row.status}`,
          })}`,
          303,
        );
      }
      const result = await performAction(sql, action, row, c.get("form")).catch((error) => {
        deps.metrics?.consoleActions.inc({ action, outcome: "failed" });
        log.error("Console action {action} on connection {connection_id} by {session} failed", {
          ...fields,
          error,
        });
        throw error;
      });
      deps.metrics?.consoleActions.inc({ action, outcome: result.done ? "done" : "refused" });
      log.info("Console action {action} on connection {connection_id} by {session}: {result}", {
        ...fields,
        result: result.message,
      });
      return c.redirect(
        `${CONSOLE_PREFIX}/connections/${row.id}?${new URLSearchParams({ done: result.message })}`,
        303,
      );
    }));
}

/**
 * Adds `/console` to `app` when an admin token is configured. Without one nothing is mounted,
 * so the console answers the same 404 as any unknown path.
 */
export function mountConsole(app: Hono, deps: ConsoleDeps): void {
  if (deps.token === null) return;
  const now = deps.now ?? Date.now;
  const auth = {
    token: deps.token,
    keeper: createSessionKeeper(sessionKeyFromToken(deps.token), deps.sessionTtlMs),
    metrics: deps.metrics,
    secureCookies: deps.secureCookies,
    now,
  };
  const router = new Hono<ConsoleEnv>();
  router.use("*", async (c, next) => {
    await next();
    for (const [name, value] of Object.entries(HEADERS)) {
      if (!c.res.headers.has(name)) c.res.headers.set(name, value);
    }
  });
  router.get(
    "/assets/console.css",
    (c) => c.body(CONSOLE_CSS, 200, { "content-type": "text/css; charset=utf-8" }),
  );
  router.get(
    "/assets/console.js",
    (c) => c.body(CONSOLE_JS, 200, { "content-type": "text/javascript; charset=utf-8" }),
  );
  router.use("*", requireSession(auth));
  mountLogin(router, auth);
  mountPages(router, deps, now);
  mountActions(router, deps, now);
  app.route(CONSOLE_PREFIX, router);
}
