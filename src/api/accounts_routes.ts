/** @module `/api/v1/accounts`: list, get, delete, an account's calendars, and connect URLs. */
import type { Hono } from "hono";
import { z } from "zod";
import { accountCalendars } from "../accounts/account_calendars.ts";
import type { ConnectDeps } from "../accounts/connect_deps.ts";
import { startConnect } from "../accounts/connect_start.ts";
import { removeAccount } from "../accounts/remove_account.ts";
import type { ChannelDeps } from "../channels/channel_deps.ts";
import { HttpError } from "../core/errors.ts";
import { SyncFailure } from "../failures/failure.ts";
import { findAccount, listAccounts } from "../storage/accounts.ts";
import { API_PREFIX } from "./admin_api.ts";
import type { ApiModule } from "./api_module.ts";
import {
  decodeCursor,
  encodeCursor,
  pageOf,
  PageQuery,
  parseInput,
  problemResponses,
  queryParams,
  requireDatabase,
} from "./api_schemas.ts";
import { Account, Calendar, IdCursor, IdPath, toAccount, toCalendar } from "./account_schemas.ts";
import { connectHttpError, ConnectQuery } from "./connect_routes.ts";

/** What the account routes need; each is null while the database is unreachable. */
export type AccountRoutesDeps = {
  connect: () => ConnectDeps | null;
  channels: () => ChannelDeps | null;
  timeoutMs: number;
};

const AccountPage = pageOf(Account, "AccountPage");
const CalendarList = z.object({ items: z.array(Calendar) }).meta({ id: "CalendarList" });
const ConnectUrl = z.object({
  url: z.string().meta({ description: "Send the user's browser here" }),
  expires_at: z.string().meta({ format: "date-time" }),
}).meta({ id: "ConnectUrl" });
const ProviderPath = z.object({ provider: z.string().min(1).max(200) });

const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

const PATHS: ApiModule["paths"] = {
  [`${API_PREFIX}/accounts`]: {
    get: {
      summary: "List accounts",
      requestParams: { query: PageQuery },
      responses: {
        200: json(AccountPage, "A page of accounts"),
        ...problemResponses(400, 401, 422),
      },
    },
  },
  [`${API_PREFIX}/accounts/{id}`]: {
    get: {
      summary: "Get an account",
      requestParams: { path: IdPath },
      responses: { 200: json(Account, "The account"), ...problemResponses(401, 404, 422) },
    },
    delete: {
      summary: "Delete an account: stop its channels, remove it with its connections and events",
      requestParams: { path: IdPath },
      responses: { 204: { description: "Removed" }, ...problemResponses(401, 404, 422) },
    },
  },
  [`${API_PREFIX}/accounts/{id}/calendars`]: {
    get: {
      summary: "The calendars the account can see (discovery), and which are connected",
      requestParams: { path: IdPath },
      responses: {
        200: json(CalendarList, "Every calendar of the account"),
        ...problemResponses(401, 404, 409, 422),
      },
    },
  },
  [`${API_PREFIX}/connect-url/{provider}`]: {
    get: {
      summary: "Start a connect flow: the provider's consent URL for the user's browser",
      requestParams: { path: ProviderPath, query: ConnectQuery },
      responses: {
        200: json(ConnectUrl, "The consent URL and when its state expires"),
        ...problemResponses(401, 404, 409, 422),
      },
    },
  },
};

function notFound(id: string): HttpError {
  return new HttpError(404, { type: "not_found", message: `No account "${id}"` });
}

/** The accounts resource. */
export function accountsApi(deps: AccountRoutesDeps): ApiModule {
  return {
    paths: PATHS,
    mount(api: Hono) {
      api.get("/accounts", async (c) => {
        const query = queryParams(c, PageQuery);
        const after = query.cursor ? decodeCursor(query.cursor, IdCursor).after : undefined;
        const rows = await listAccounts(requireDatabase(deps.connect).sql, {
          limit: query.limit,
          after,
        });
        const last = rows.length === query.limit ? rows.at(-1) : undefined;
        return c.json({
          items: rows.map(toAccount),
          next_cursor: last ? encodeCursor({ after: last.id }) : null,
        });
      });
      api.get("/accounts/:id", async (c) => {
        const { id } = parseInput(IdPath, c.req.param(), "path");
        const row = await findAccount(requireDatabase(deps.connect).sql, id);
        if (!row) throw notFound(id);
        return c.json(toAccount(row));
      });
      api.delete("/accounts/:id", async (c) => {
        const { id } = parseInput(IdPath, c.req.param(), "path");
        const channels = requireDatabase(deps.channels);
        const signal = AbortSignal.timeout(deps.timeoutMs * 3);
        if (!(await removeAccount(channels, id, signal))) throw notFound(id);
        return c.body(null, 204);
      });
      api.get("/accounts/:id/calendars", async (c) => {
        const { id } = parseInput(IdPath, c.req.param(), "path");
        const connect = requireDatabase(deps.connect);
        const calendars = await accountCalendars(connect, id, c.req.raw.signal).catch((error) => {
          throw providerHttpError(error);
        });
        if (calendars === null) throw notFound(id);
        return c.json({ items: calendars.map(toCalendar) });
      });
      api.get("/connect-url/:provider", async (c) => {
        const { provider } = parseInput(ProviderPath, c.req.param(), "path");
        const query = parseInput(ConnectQuery, c.req.query(), "query");
        const started = await startConnect(requireDatabase(deps.connect), {
          provider,
          calendars: query.calendars,
          accountId: query.account,
        }).catch((error) => {
          throw connectHttpError(error);
        });
        return c.json({ url: started.url, expires_at: started.expiresAt.toISOString() });
      });
    },
  };
}

/** A provider refusing discovery: the account needs re-consent (409) or the provider failed. */
export function providerHttpError(error: unknown): unknown {
  if (!(error instanceof SyncFailure)) return connectHttpError(error);
  if (error.kind === "reauth_required") {
    return new HttpError(409, {
      type: "conflict",
      message: "The account needs re-authorisation: start a connect flow for it",
    });
  }
  return new HttpError(503, {
    type: "unavailable",
    message: `The provider could not list calendars (${error.kind})`,
    headers: { "retry-after": "30" },
  });
}
