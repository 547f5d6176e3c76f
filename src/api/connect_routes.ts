/**
 * @module The connect flow the user's browser follows (not under /api/v1):
 * `GET /connect/{provider}` (admin token) sends it to the provider's consent screen, and the
 * provider sends it back to `GET /connect/{provider}/callback`, which ends on an HTML page.
 */
import type { Context, Hono } from "hono";
import { z } from "zod";
import type { ConnectDeps } from "../accounts/connect_deps.ts";
import { completeConnect } from "../accounts/connect_callback.ts";
import { startConnect } from "../accounts/connect_start.ts";
import { ConnectError, type ConnectFailureReason, HttpError } from "../core/errors.ts";
import type { Metrics } from "../metrics/metrics.ts";
import { requireAdminToken } from "./admin_auth.ts";
import { connectPage } from "./connect_page.ts";
import { parseInput, requireDatabase } from "./api_schemas.ts";

/** `?calendars=` and `?account=` of a flow's start. */
export const ConnectQuery = z.object({
  calendars: z.enum(["all", "primary", "none"]).optional(),
  account: z.uuid().optional(),
});

/** What the connect routes need; `connect` is null while the database is unreachable. */
export type ConnectRouteDeps = {
  adminToken: string | null;
  connect: () => ConnectDeps | null;
  metrics?: Metrics;
};

const PAGES: Record<ConnectFailureReason | "internal", [number, string, string]> = {
  not_configured: [503, "Connecting is not set up", "This calsync has no OAuth client for it."],
  unknown_provider: [404, "Unknown provider", "There is no such provider in calsync."],
  forged_state: [400, "Invalid sign-in link", "Start again from the application."],
  replayed_state: [400, "Sign-in link already used", "Start again from the application."],
  expired_state: [400, "Sign-in link expired", "Start again from the application."],
  access_denied: [403, "Access not granted", "Nothing was connected. You can close this page."],
  provider_error: [502, "The provider refused", "Nothing was connected. Start again later."],
  exchange_failed: [502, "Sign-in failed", "The provider did not confirm the sign-in."],
  id_token_invalid: [502, "Sign-in failed", "The provider's answer did not identify you."],
  no_refresh_token: [502, "Sign-in incomplete", "Start again and grant offline access."],
  wrong_account: [409, "Another account", "Sign in with the account this link was made for."],
  discovery_failed: [502, "Calendars unavailable", "Your calendars could not be listed."],
  internal: [500, "Something went wrong", "Nothing was connected. Start again later."],
};

/** An HTTP error for a flow's start (the admin's JSON side). */
export function connectHttpError(error: unknown): unknown {
  if (!(error instanceof ConnectError)) return error;
  const status = error.reason === "unknown_provider" ? 404 : 409;
  return new HttpError(status, {
    type: status === 404 ? "not_found" : "conflict",
    message: error.message,
  });
}

/** Mounts both routes; the start only when an admin token is configured. */
export function mountConnectFlow(app: Hono, deps: ConnectRouteDeps): void {
  if (deps.adminToken !== null) {
    app.get(
      "/connect/:provider",
      requireAdminToken(deps.adminToken, deps.metrics),
      (c) => start(c, deps),
    );
  }
  app.get("/connect/:provider/callback", (c) => callback(c, deps));
}

async function start(c: Context, deps: ConnectRouteDeps): Promise<Response> {
  const query = parseInput(ConnectQuery, c.req.query(), "query");
  const connect = requireDatabase(deps.connect);
  const started = await startConnect(connect, {
    provider: c.req.param("provider")!,
    calendars: query.calendars,
    accountId: query.account,
  }).catch((error) => {
    throw connectHttpError(error);
  });
  if ((c.req.header("accept") ?? "").includes("application/json")) {
    return c.json({ url: started.url, expires_at: started.expiresAt.toISOString() });
  }
  return new Response(null, {
    status: 302,
    headers: { location: started.url, "cache-control": "no-store" },
  });
}

async function callback(c: Context, deps: ConnectRouteDeps): Promise<Response> {
  const connect = deps.connect();
  if (connect === null) {
    return connectPage(503, "Try again shortly", "calsync cannot reach its database right now.");
  }
  try {
    const done = await completeConnect(
      connect,
      c.req.param("provider")!,
      c.req.query(),
      c.req.raw.signal,
    );
    const who = done.account.email ?? "Your account";
    const count = done.connected.length;
    return connectPage(
      200,
      "Calendar connected",
      `${who} is connected to calsync (${count} calendar${count === 1 ? "" : "s"} added). ` +
        "You can close this page.",
    );
  } catch (error) {
    const reason = error instanceof ConnectError ? error.reason : "internal";
    const [status, title, detail] = PAGES[reason];
    return connectPage(status, title, detail);
  }
}
