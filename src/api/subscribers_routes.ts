/** @module `/api/v1/subscribers`: change feed subscribers, as `calsync subscribers` manages them. */
import type { Hono } from "hono";
import { z } from "zod";
import { HttpError } from "../core/errors.ts";
import { ROTATION_OVERLAP_MS, subscriberInputProblem } from "../feed/subscriber_input.ts";
import { generateSecret } from "../feed/webhook_signature.ts";
import { firstSeqSince } from "../storage/change_feed.ts";
import type { Sql } from "../storage/client.ts";
import {
  deleteSubscriber,
  insertSubscriber,
  listSubscribers,
  replaySubscriber,
  rotateSubscriberSecret,
  setSubscriberStatus,
  type SubscriberRow,
} from "../storage/subscribers.ts";
import { API_PREFIX } from "./admin_api.ts";
import type { ApiModule } from "./api_module.ts";
import { jsonBody, problemResponses, requireDatabase } from "./api_schemas.ts";

const NewSubscriber = z.object({
  url: z.string().min(1).max(2048),
  connection_id: z.uuid().optional(),
  account_id: z.uuid().optional(),
  secret: z.string().optional(),
  from_seq: z.number().int().min(0).optional(),
}).refine((body) => !(body.connection_id && body.account_id), {
  message: "give connection_id or account_id, not both",
});

const Replay = z.object({
  from_seq: z.number().int().min(0).optional(),
  since: z.iso.datetime({ offset: true }).optional(),
}).refine((body) => (body.from_seq === undefined) !== (body.since === undefined), {
  message: "give one of from_seq or since",
});

const Rotate = z.object({ secret: z.string().optional() });

const Subscriber = z.object({
  id: z.string(),
  url: z.string(),
  connection_id: z.string().nullable(),
  account_id: z.string().nullable(),
  status: z.enum(["active", "paused"]),
  paused_reason: z.string().nullable(),
  acked_seq: z.number().int(),
  attempts: z.number().int(),
  failing_since: z.string().nullable(),
  last_error: z.record(z.string(), z.unknown()).nullable(),
  delivered_total: z.number().int(),
  created_at: z.string(),
}).meta({ id: "Subscriber" });

const WithSecret = Subscriber.extend({
  secret: z.string().meta({ description: "The signing secret; shown only in this answer" }),
}).meta({ id: "SubscriberWithSecret" });

const IdParam = z.object({ id: z.uuid() });

function subscriberJson(row: SubscriberRow) {
  return {
    id: row.id,
    url: row.url,
    connection_id: row.connection_id,
    account_id: row.account_id,
    status: row.status,
    paused_reason: row.paused_reason,
    acked_seq: row.acked_seq,
    attempts: row.attempts,
    failing_since: row.failing_since?.toISOString() ?? null,
    last_error: row.last_error,
    delivered_total: row.delivered_total,
    created_at: row.created_at.toISOString(),
  };
}

function notFound(id: string): HttpError {
  return new HttpError(404, { type: "not_found", message: `No subscriber "${id}"` });
}

function idOf(value: string): string {
  const parsed = IdParam.safeParse({ id: value });
  if (!parsed.success) throw notFound(value);
  return parsed.data.id;
}

function invalid(message: string): HttpError {
  return new HttpError(422, {
    type: "validation_failed",
    message: `Invalid body: ${message}`,
    extra: { issues: [{ path: "(root)", message }] },
  });
}

const json = (schema: z.ZodType) => ({ content: { "application/json": { schema } } });
const one = (description: string) => ({ 200: { description, ...json(Subscriber) } });
const byId = `${API_PREFIX}/subscribers/{id}`;

/** What the subscribers resource needs: the pool, and the sealing of secrets at rest. */
export type SubscribersApiDeps = {
  sql: () => Sql | null;
  /** Seals a signing secret before it is stored (CALSYNC_ENCRYPTION_KEY). */
  seal: (secret: string) => Promise<string>;
};

/** The subscribers resource. */
export function subscribersModule(deps: SubscribersApiDeps): ApiModule {
  const action = (summary: string, body?: z.ZodType) => ({
    post: {
      summary,
      requestParams: { path: IdParam },
      ...(body ? { requestBody: json(body) } : {}),
      responses: { ...one("The subscriber"), ...problemResponses(401, 404, 422) },
    },
  });
  return {
    paths: {
      [`${API_PREFIX}/subscribers`]: {
        get: {
          summary: "Every subscriber",
          responses: {
            200: { description: "Subscribers", ...json(z.object({ items: z.array(Subscriber) })) },
            ...problemResponses(401),
          },
        },
        post: {
          summary: "Add a subscriber (its secret is shown once)",
          requestBody: json(NewSubscriber),
          responses: {
            201: { description: "The new subscriber", ...json(WithSecret) },
            ...problemResponses(401, 422),
          },
        },
      },
      [byId]: {
        delete: {
          summary: "Remove a subscriber",
          requestParams: { path: IdParam },
          responses: { 204: { description: "Removed" }, ...problemResponses(401, 404) },
        },
      },
      [`${byId}/pause`]: action("Pause delivery"),
      [`${byId}/resume`]: action("Resume delivery"),
      [`${byId}/replay`]: action("Deliver again from a sequence number or a time", Replay),
      [`${byId}/rotate-secret`]: action("New secret; the old one signs 24 h more", Rotate),
    },
    mount: (api: Hono) => mountRoutes(api, deps),
  };
}

function mountRoutes(api: Hono, deps: SubscribersApiDeps): void {
  api.get("/subscribers", async (c) => {
    const rows = await listSubscribers(requireDatabase(deps.sql));
    return c.json({ items: rows.map(subscriberJson) });
  });
  api.post("/subscribers", async (c) => {
    const body = await jsonBody(c, NewSubscriber);
    const secret = body.secret ?? generateSecret();
    const problem = subscriberInputProblem({ url: body.url, secret });
    if (problem) throw invalid(problem);
    const stored = await deps.seal(secret);
    const row = await insertSubscriber(requireDatabase(deps.sql), {
      url: body.url,
      connectionId: body.connection_id ?? null,
      accountId: body.account_id ?? null,
      secret: stored,
      fromSeq: body.from_seq === undefined ? null : Math.max(body.from_seq - 1, 0),
    });
    return c.json({ ...subscriberJson(row), secret }, 201);
  });
  api.delete("/subscribers/:id", async (c) => {
    const id = idOf(c.req.param("id"));
    if (!await deleteSubscriber(requireDatabase(deps.sql), id)) throw notFound(id);
    return c.body(null, 204);
  });
  for (const [verb, status] of [["pause", "paused"], ["resume", "active"]] as const) {
    api.post(`/subscribers/:id/${verb}`, async (c) => {
      const id = idOf(c.req.param("id"));
      const row = await setSubscriberStatus(
        requireDatabase(deps.sql),
        id,
        status,
        "paused by an operator",
      );
      if (!row) throw notFound(id);
      return c.json(subscriberJson(row));
    });
  }
  api.post("/subscribers/:id/replay", async (c) => {
    const id = idOf(c.req.param("id"));
    const body = await jsonBody(c, Replay);
    const sql = requireDatabase(deps.sql);
    const start = body.from_seq ?? await firstSeqSince(sql, new Date(body.since!));
    const row = await replaySubscriber(sql, id, start);
    if (!row) throw notFound(id);
    return c.json(subscriberJson(row));
  });
  api.post("/subscribers/:id/rotate-secret", async (c) => {
    const id = idOf(c.req.param("id"));
    const body = await jsonBody(c, Rotate);
    const secret = body.secret ?? generateSecret();
    if (subscriberInputProblem({ url: "https://x", secret })) {
      throw invalid("secret must be whsec_ followed by base64 of 24 to 64 bytes");
    }
    const sealed = await deps.seal(secret);
    if (!await rotateSubscriberSecret(requireDatabase(deps.sql), id, sealed, ROTATION_OVERLAP_MS)) {
      throw notFound(id);
    }
    return c.json({ id, secret });
  });
}
