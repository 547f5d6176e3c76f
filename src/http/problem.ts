/** @module The one shape of every HTTP error answer: `application/problem+json` (RFC 9457). */
import type { HttpErrorStatus, ProblemType } from "../core/errors.ts";

/** Reason phrases of the statuses calsync answers with. */
export const STATUS_TEXT: Readonly<Record<number, string>> = {
  100: "Continue",
  200: "OK",
  201: "Created",
  202: "Accepted",
  204: "No Content",
  304: "Not Modified",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  409: "Conflict",
  410: "Gone",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  422: "Unprocessable Content",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

/** The media type of error answers. */
export const PROBLEM_CONTENT_TYPE = "application/problem+json";

/**
 * The body of an error answer: RFC 9457 members (`type` is `about:blank`, so `title` is the
 * status phrase) plus `error`, the stable problem type callers match on, and `message`.
 */
export function problemBody(
  status: HttpErrorStatus,
  type: ProblemType,
  message: string,
  extra: Readonly<Record<string, unknown>> = {},
): string {
  return JSON.stringify({
    ...extra,
    type: "about:blank",
    title: STATUS_TEXT[status] ?? "Error",
    status,
    detail: message,
    error: type,
    message,
  });
}

/** A complete error answer. */
export function problemResponse(
  status: HttpErrorStatus,
  type: ProblemType,
  message: string,
  headers: Readonly<Record<string, string>> = {},
  extra: Readonly<Record<string, unknown>> = {},
): Response {
  return new Response(problemBody(status, type, message, extra), {
    status,
    headers: { ...headers, "content-type": PROBLEM_CONTENT_TYPE },
  });
}
