/** @module `GET /api/v1/changes`: the change feed by sequence number, 410 once pruned. */
import type { Hono } from "hono";
import { z } from "zod";
import { readPage } from "../feed/follow.ts";
import { changeJson } from "../feed/change_json.ts";
import type { Sql } from "../storage/client.ts";
import { API_PREFIX } from "./admin_api.ts";
import type { ApiModule } from "./api_module.ts";
import { problemResponses, queryParams, requireDatabase } from "./api_schemas.ts";

const ChangesQuery = z.object({
  after: z.coerce.number().int().min(0).meta({
    description: "Return changes with a sequence number above this; 0 reads from the start",
  }),
  limit: z.coerce.number().int().min(1).max(1_000).default(100),
  connection: z.uuid().optional(),
  account: z.uuid().optional(),
});

/** One change as the API shows it. */
export const Change = z.object({
  seq: z.number().int(),
  committed_at: z.string(),
  type: z.string().meta({
    description: "event.created, event.updated, event.deleted, or connection.<state> " +
      "(first_synced, active, reauth_required, calendar_unavailable, deletions_held, disabled)",
  }),
  connection_id: z.string().nullable(),
  account_id: z.string().nullable(),
  external_event_id: z.string().nullable(),
  data: z.record(z.string(), z.unknown()).nullable().meta({
    description: "The occurrence as the mirror now holds it (raw excepted), or the new state",
  }),
}).meta({ id: "Change" });

const ChangesPage = z.object({
  changes: z.array(Change),
  next_after: z.number().int().meta({ description: "Pass as `after` to read on" }),
  head: z.number().int().meta({ description: "The feed's latest sequence number" }),
}).meta({ id: "ChangesPage" });

/** The changes resource. */
export function changesModule(deps: { sql: () => Sql | null }): ApiModule {
  return {
    paths: {
      [`${API_PREFIX}/changes`]: {
        get: {
          summary: "Changes after a sequence number, in order",
          description: "Every committed change of the mirror once, in commit order. A 410 means " +
            "the position was pruned: re-read the mirror, then follow from `head`.",
          requestParams: { query: ChangesQuery },
          responses: {
            200: {
              description: "A page of changes",
              content: { "application/json": { schema: ChangesPage } },
            },
            ...problemResponses(401, 410, 422),
          },
        },
      },
    },
    mount: (api: Hono) => {
      api.get("/changes", async (c) => {
        const query = queryParams(c, ChangesQuery);
        const sql = requireDatabase(deps.sql);
        const { changes, head } = await readPage(sql, query.after, query.limit, {
          connectionId: query.connection,
          accountId: query.account,
        });
        // A short page saw everything up to `head` (read first), so the reader may skip there.
        const lastSeq = changes.at(-1)?.seq ?? 0;
        const last = changes.length === query.limit ? lastSeq : Math.max(head, lastSeq);
        return c.json({
          changes: changes.map(changeJson),
          next_after: Math.max(query.after, last),
          head,
        });
      });
    },
  };
}
