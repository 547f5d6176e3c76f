/** @module `/api/v1/connections`: list (the drill's state columns), create, get, delete, sync. */
import type { Hono } from "hono";
import { z } from "zod";
import { connectAccountCalendars } from "../accounts/account_calendars.ts";
import type { ConnectDeps } from "../accounts/connect_deps.ts";
import type { ChannelDeps } from "../channels/channel_deps.ts";
import { stopConnectionChannels } from "../channels/stop_channels.ts";
import { HttpError } from "../core/errors.ts";
import { logger } from "../log/setup.ts";
import {
  deleteConnection,
  listConnectionsPage,
  listConnectionStatus,
  requestSync,
} from "../storage/connections.ts";
import { API_PREFIX } from "./admin_api.ts";
import type { ApiModule } from "./api_module.ts";
import {
  decodeCursor,
  encodeCursor,
  jsonBody,
  pageOf,
  PageQuery,
  parseInput,
  problemResponses,
  queryParams,
  requireDatabase,
} from "./api_schemas.ts";
import { Connection, IdCursor, IdPath, toConnection } from "./account_schemas.ts";
import { providerHttpError } from "./accounts_routes.ts";

const log = logger("api");

/** What the connection routes need; each is null while the database is unreachable. */
export type ConnectionRoutesDeps = {
  connect: () => ConnectDeps | null;
  channels: () => ChannelDeps | null;
  timeoutMs: number;
};

const ConnectionQuery = PageQuery.extend({ account: z.uuid().optional() });
const ConnectionPage = pageOf(Connection, "ConnectionPage");
const NewConnection = z.object({
  account_id: z.uuid(),
  calendar: z.string().min(1).max(1024).meta({
    description: "A calendar id, `primary` (stored as its real id) or `all`",
  }),
}).meta({ id: "NewConnection" });
const Created = z.object({ items: z.array(Connection) }).meta({ id: "CreatedConnections" });
const SyncRequest = z.object({
  full: z.boolean().default(false).meta({ description: "Ignore the cursor: a full resync" }),
  force: z.boolean().default(false).meta({
    description: "Ignore a pending backoff and leave calendar_unavailable/disabled/reauth_required",
  }),
}).meta({ id: "SyncRequest" });

const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

const PATHS: ApiModule["paths"] = {
  [`${API_PREFIX}/connections`]: {
    get: {
      summary: "List connections with their sync state",
      requestParams: { query: ConnectionQuery },
      responses: {
        200: json(ConnectionPage, "A page of connections"),
        ...problemResponses(400, 401, 422),
      },
    },
    post: {
      summary: "Connect calendars of an account (an id, primary or all)",
      requestBody: { content: { "application/json": { schema: NewConnection } } },
      responses: {
        201: json(Created, "The new connections, each due for its first full sync"),
        ...problemResponses(400, 401, 404, 409, 422),
      },
    },
  },
  [`${API_PREFIX}/connections/{id}`]: {
    get: {
      summary: "Get a connection",
      requestParams: { path: IdPath },
      responses: { 200: json(Connection, "The connection"), ...problemResponses(401, 404, 422) },
    },
    delete: {
      summary: "Delete a connection: stop its channel, remove it with its events",
      requestParams: { path: IdPath },
      responses: { 204: { description: "Removed" }, ...problemResponses(401, 404, 422) },
    },
  },
  [`${API_PREFIX}/connections/{id}/sync`]: {
    post: {
      summary: "Request a sync (or a full sync) and wake the scheduler",
      requestParams: { path: IdPath },
      requestBody: { content: { "application/json": { schema: SyncRequest } } },
      responses: {
        202: json(Connection, "Requested; the connection as it is now"),
        ...problemResponses(400, 401, 404, 422),
      },
    },
  },
};

function notFound(id: string): HttpError {
  return new HttpError(404, { type: "not_found", message: `No connection "${id}"` });
}

/** The connections resource. */
export function connectionsApi(deps: ConnectionRoutesDeps): ApiModule {
  const sql = () => requireDatabase(deps.connect).sql;
  async function one(id: string) {
    const [row] = await listConnectionStatus(sql(), { connectionId: id });
    if (!row) throw notFound(id);
    return toConnection(row);
  }
  return {
    paths: PATHS,
    mount(api: Hono) {
      api.get("/connections", async (c) => {
        const query = queryParams(c, ConnectionQuery);
        const after = query.cursor ? decodeCursor(query.cursor, IdCursor).after : undefined;
        const rows = await listConnectionsPage(sql(), {
          limit: query.limit,
          after,
          accountId: query.account,
        });
        const last = rows.length === query.limit ? rows.at(-1) : undefined;
        return c.json({
          items: rows.map(toConnection),
          next_cursor: last ? encodeCursor({ after: last.id }) : null,
        });
      });
      api.post("/connections", async (c) => {
        const body = await jsonBody(c, NewConnection);
        const connect = requireDatabase(deps.connect);
        const added = await connectAccountCalendars(
          connect,
          body.account_id,
          body.calendar,
          c.req.raw.signal,
        ).catch((error) => {
          throw providerHttpError(error);
        });
        if (added === null) {
          throw new HttpError(404, {
            type: "not_found",
            message: `No account "${body.account_id}"`,
          });
        }
        if (added.length === 0) {
          throw new HttpError(409, {
            type: "conflict",
            message: `Account ${body.account_id} already has a connection for "${body.calendar}"`,
          });
        }
        return c.json({ items: await Promise.all(added.map((row) => one(row.id))) }, 201);
      });
      api.get("/connections/:id", async (c) => {
        const { id } = parseInput(IdPath, c.req.param(), "path");
        return c.json(await one(id));
      });
      api.delete("/connections/:id", async (c) => {
        const { id } = parseInput(IdPath, c.req.param(), "path");
        const channels = requireDatabase(deps.channels);
        await stopConnectionChannels(channels, id, {
          signal: AbortSignal.timeout(deps.timeoutMs * 3),
        }).catch((error) =>
          log.warn("Cannot stop the channels of connection {connection_id}", {
            connection_id: id,
            error_message: (error as Error).message,
          })
        );
        if (!(await deleteConnection(channels.sql, id))) throw notFound(id);
        return c.body(null, 204);
      });
      api.post("/connections/:id/sync", async (c) => {
        const { id } = parseInput(IdPath, c.req.param(), "path");
        // No body is the same as `{}`: a plain incremental sync.
        const body = c.req.header("content-length") === "0" || !c.req.header("content-type")
          ? parseInput(SyncRequest, {}, "body")
          : await jsonBody(c, SyncRequest);
        if (!(await requestSync(sql(), id, body))) throw notFound(id);
        return c.json(await one(id), 202);
      });
    },
  };
}
