/**
 * @module The console's door: the login form (the admin token), the session cookie, logout, and
 * the middleware that refuses everything else without a session, and every POST without the
 * session's CSRF token.
 */
import type { Context, Hono, MiddlewareHandler } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { html } from "hono/html";
import { secretsEqual } from "../crypto/secret_compare.ts";
import { logger } from "../log/setup.ts";
import type { Metrics } from "../metrics/metrics.ts";
import { CONSOLE_PREFIX, page } from "./console_layout.ts";
import { type ConsoleSession, type SessionKeeper, sessionLabel } from "./console_session.ts";

const log = logger("console");

/** The session cookie's name. */
export const SESSION_COOKIE = "calsync_console";

/** Hono variables the console's handlers read. */
export type ConsoleEnv = { Variables: { session: ConsoleSession; form: Record<string, string> } };

/** What the door needs. */
export type AuthDeps = {
  token: string;
  keeper: SessionKeeper;
  metrics?: Metrics;
  /** Set `Secure` even on plain-http requests (the public URL is https behind a proxy). */
  secureCookies: boolean;
  now: () => number;
};

function isHttps(c: Context, deps: AuthDeps): boolean {
  return deps.secureCookies || new URL(c.req.url).protocol === "https:" ||
    c.req.header("x-forwarded-proto") === "https";
}

function refuse(c: Context, deps: AuthDeps, reason: string, status: 401 | 403) {
  deps.metrics?.adminApiRejections.inc({ reason: `console_${reason}` });
  log.warn("Refused a console request to {method} {path}: {reason}", {
    method: c.req.method,
    path: c.req.path,
    reason,
  });
  const text = status === 401
    ? html`
      <p>Sign in first.</p>
      <p><a href="${CONSOLE_PREFIX}/login">Log in</a></p>
    `
    : html`<p class="alert">This action was refused: the form did not carry this session's
      security token (reload the page and try again).</p>`;
  return c.html(
    page(status === 401 ? "Signed out" : "Forbidden", text, {
      csrf: null,
      section: "login",
    }),
    status,
  );
}

/** The login page, optionally with an error. */
export function loginPage(error: string | null) {
  return page(
    "Log in",
    html`
      ${error ? html`<p class="alert" role="alert">${error}</p>` : ""}
          <form method="post" action="${CONSOLE_PREFIX}/login">
        <p><label for="token">Admin token</label><br>
            <input id="token" name="token" type="password" autocomplete="current-password" required
              size="40"></p>
        <p><button type="submit">Log in</button></p>
      </form>
    `,
    { csrf: null, section: "login" },
  );
}

/** A form body as strings (files and repeated fields are not used by the console). */
async function formFields(c: Context): Promise<Record<string, string>> {
  const type = c.req.header("content-type") ?? "";
  if (!/^(application\/x-www-form-urlencoded|multipart\/form-data)/i.test(type)) return {};
  const body = await c.req.parseBody();
  return Object.fromEntries(
    Object.entries(body).filter(([, v]) => typeof v === "string") as [string, string][],
  );
}

/** A cross-site POST: an Origin header naming another host than the one asked. */
function crossOrigin(c: Context): boolean {
  const origin = c.req.header("origin");
  if (origin === undefined || origin === "null") return origin === "null";
  try {
    return new URL(origin).host !== (c.req.header("host") ?? new URL(c.req.url).host);
  } catch {
    return true;
  }
}

/** Adds GET/POST /login and POST /logout to the console router. */
export function mountLogin(router: Hono<ConsoleEnv>, deps: AuthDeps): void {
  router.get("/login", (c) => c.html(loginPage(null)));
  router.post("/login", async (c) => {
    if (crossOrigin(c)) return refuse(c, deps, "cross_origin", 403);
    const presented = (await formFields(c)).token ?? "";
    if (presented === "" || !secretsEqual(deps.token, presented)) {
      deps.metrics?.adminApiRejections.inc({
        reason: presented === "" ? "console_missing" : "console_wrong",
      });
      log.warn("Refused a console login: {reason} token", {
        reason: presented === "" ? "missing" : "wrong",
      });
      return c.html(loginPage("That is not the admin token."), 401);
    }
    const { cookie, session } = await deps.keeper.issue(deps.now());
    setCookie(c, SESSION_COOKIE, cookie, {
      path: CONSOLE_PREFIX,
      httpOnly: true,
      sameSite: "Strict",
      secure: isHttps(c, deps),
      expires: new Date(session.expiresAt),
    });
    log.info("Console session {session} started", { session: sessionLabel(session) });
    return c.redirect(CONSOLE_PREFIX, 303);
  });
  router.post("/logout", (c) => {
    const session = c.get("session");
    deps.keeper.revoke(session);
    deleteCookie(c, SESSION_COOKIE, { path: CONSOLE_PREFIX, secure: isHttps(c, deps) });
    log.info("Console session {session} ended", { session: sessionLabel(session) });
    return c.redirect(`${CONSOLE_PREFIX}/login`, 303);
  });
}

/**
 * Lets a request through with a valid session (and, for a POST, its CSRF token in the `csrf`
 * field or the `x-csrf-token` header); the login page and the static assets need neither.
 */
export function requireSession(deps: AuthDeps): MiddlewareHandler<ConsoleEnv> {
  return async (c, next) => {
    const path = c.req.path.slice(CONSOLE_PREFIX.length);
    if (path === "/login" || path.startsWith("/assets/")) return await next();
    const session = await deps.keeper.verify(getCookie(c, SESSION_COOKIE), deps.now());
    if (session === null) {
      if (c.req.method === "GET") {
        deps.metrics?.adminApiRejections.inc({ reason: "console_missing" });
        return c.redirect(`${CONSOLE_PREFIX}/login`, 303);
      }
      return refuse(c, deps, "no_session", 401);
    }
    c.set("session", session);
    if (c.req.method === "POST") {
      const form = await formFields(c);
      const presented = form.csrf ?? c.req.header("x-csrf-token");
      if (crossOrigin(c) || !deps.keeper.csrfMatches(session, presented)) {
        return refuse(c, deps, "csrf", 403);
      }
      c.set("form", form);
    }
    await next();
  };
}
