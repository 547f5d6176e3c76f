/** @module Schemas every admin API resource shares: problems, pages, and input parsing. */
import type { Context } from "hono";
import { z } from "zod";
import type { ZodOpenApiResponseObject, ZodOpenApiResponsesObject } from "zod-openapi";
import { HttpError } from "../core/errors.ts";
import { PROBLEM_CONTENT_TYPE } from "../http/problem.ts";

/** An error answer (RFC 9457 plus calsync's stable `error` type), as `src/http/problem.ts` writes it. */
export const Problem = z.object({
  type: z.string(),
  title: z.string(),
  status: z.number().int(),
  detail: z.string(),
  error: z.string().meta({ description: "Stable problem type to match on" }),
  message: z.string(),
  issues: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
}).meta({ id: "Problem" });

const PROBLEM_TEXT: Record<number, string> = {
  400: "Malformed request",
  401: "Missing or wrong admin token",
  404: "No such resource",
  409: "Conflicts with the resource's state",
  410: "No longer available",
  422: "Validation failed",
};

/** OpenAPI responses for the given error statuses, each a Problem. */
export function problemResponses(...statuses: number[]): ZodOpenApiResponsesObject {
  const responses: Record<string, ZodOpenApiResponseObject> = {};
  for (const status of statuses) {
    responses[String(status)] = {
      description: PROBLEM_TEXT[status] ?? "Error",
      content: { [PROBLEM_CONTENT_TYPE]: { schema: Problem } },
    };
  }
  return responses;
}

/** A 422 listing what was wrong with an input, field by field (in the problem's `issues`). */
export function validationError(where: string, error: z.ZodError): HttpError {
  const issues = error.issues.map((issue) => ({
    path: issue.path.join(".") || "(root)",
    message: issue.message,
  }));
  const list = issues.map((issue) => `${issue.path}: ${issue.message}`).join("; ");
  return new HttpError(422, {
    type: "validation_failed",
    message: `Invalid ${where}: ${list}`,
    extra: { issues },
  });
}

/** Parses `value` with `schema`, or throws a 422 naming `where` (body, query...). */
export function parseInput<T extends z.ZodType>(
  schema: T,
  value: unknown,
  where: string,
): z.infer<T> {
  const result = schema.safeParse(value);
  if (!result.success) throw validationError(where, result.error);
  return result.data;
}

/** The request's JSON body parsed with `schema`; a body that is not JSON is a 400. */
export async function jsonBody<T extends z.ZodType>(c: Context, schema: T): Promise<z.infer<T>> {
  let value: unknown;
  try {
    value = await c.req.json();
  } catch {
    throw new HttpError(400, { type: "malformed_json", message: "The body is not valid JSON" });
  }
  return parseInput(schema, value, "body");
}

/** The request's query parameters parsed with `schema`. */
export function queryParams<T extends z.ZodType>(c: Context, schema: T): z.infer<T> {
  return parseInput(schema, c.req.query(), "query");
}

/** `?limit=&cursor=` of a listing: at most 500 rows a page, 50 unless asked. */
export const PageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().min(1).max(512).optional(),
});

/** A page of a listing: its rows and the cursor of the next page (null on the last). */
export function pageOf<T extends z.ZodType>(item: T, id: string) {
  return z.object({ items: z.array(item), next_cursor: z.string().nullable() }).meta({ id });
}

/**
 * Cursors are opaque to callers: the last row's sort key, base64url-encoded JSON. A cursor that
 * does not decode to the expected shape is a 400, never a 500.
 */
export function encodeCursor(key: unknown): string {
  const bytes = new TextEncoder().encode(JSON.stringify(key));
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_")
    .replaceAll("=", "");
}

/** Decodes a cursor made by `encodeCursor` into `schema`'s shape. */
export function decodeCursor<T extends z.ZodType>(cursor: string, schema: T): z.infer<T> {
  try {
    const text = atob(cursor.replaceAll("-", "+").replaceAll("_", "/"));
    const bytes = Uint8Array.from(text, (char) => char.charCodeAt(0));
    const result = schema.safeParse(JSON.parse(new TextDecoder().decode(bytes)));
    if (result.success) return result.data;
  } catch {
    // Falls through to the one answer for every unreadable cursor.
  }
  throw new HttpError(400, {
    type: "invalid_cursor",
    message: "The cursor is not one this API made",
  });
}

/** The database pool, or a 503 while the daemon has none (starting, or the database is down). */
export function requireDatabase<T>(database: () => T | null): T {
  const found = database();
  if (found === null) {
    throw new HttpError(503, {
      type: "unavailable",
      message: "The database is not reachable; try again shortly",
      headers: { "retry-after": "5" },
    });
  }
  return found;
}
