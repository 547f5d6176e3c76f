/** @module Turns provider responses and thrown errors into classified sync failures. */
import { DatabaseDeadlineError, LeaseLostError } from "../core/errors.ts";
import { type FailureKind, SyncFailure } from "./failure.ts";
import { parseRetryAfter } from "./retry_after.ts";

/** What we know about a failed provider HTTP response. */
export type FailedResponse = {
  provider: "google" | "microsoft";
  status: number;
  retryAfter: string | null;
  /** The body text (possibly truncated); parsed here because error bodies vary. */
  body: string;
};

const GOOGLE_RATE_LIMIT_REASONS = new Set(["rateLimitExceeded", "userRateLimitExceeded"]);
const GRAPH_CURSOR_CODES = new Set(["syncStateNotFound", "resyncRequired", "syncStateInvalid"]);
// The calendar is gone or no longer shared with us (§1.4, §3.4): retrying cannot help. Google's
// 403 rate limits carry their own reasons and are matched before this.
const GONE_CODES: Record<"google" | "microsoft", Record<number, readonly string[]>> = {
  google: { 404: ["notfound"], 403: ["forbidden"] },
  microsoft: {
    404: ["erroritemnotfound", "itemnotfound"],
    403: ["erroraccessdenied", "accessdenied"],
  },
};

/** True when a provider answer says the calendar was deleted or access to it was revoked. */
export function isCalendarGone(
  provider: "google" | "microsoft",
  status: number,
  code: string | undefined,
): boolean {
  return (GONE_CODES[provider][status] ?? []).includes((code ?? "").toLowerCase());
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** Pulls the provider's error code and message from a Google or Graph error body. */
export function providerErrorCode(body: string): { code?: string; message?: string } {
  const json = parseJson(body) as Record<string, unknown> | null;
  if (!json || typeof json !== "object") return {};
  const error = json.error;
  if (typeof error === "string") {
    // OAuth token endpoints: {"error":"invalid_grant","error_description":"..."}
    const description = json.error_description;
    return { code: error, message: typeof description === "string" ? description : undefined };
  }
  if (error && typeof error === "object") {
    const e = error as Record<string, unknown>;
    const errors = Array.isArray(e.errors) ? e.errors : [];
    const first = errors[0] as Record<string, unknown> | undefined;
    const reason = typeof first?.reason === "string" ? first.reason : undefined;
    const code = typeof e.code === "string" ? e.code : reason;
    return { code, message: typeof e.message === "string" ? e.message : undefined };
  }
  return {};
}

/** Classifies a non-2xx provider response per the architecture's failure table. */
export function classifyResponse(response: FailedResponse, now: number = Date.now()): SyncFailure {
  const { status, provider } = response;
  const { code, message } = providerErrorCode(response.body);
  const retryAfterMs = parseRetryAfter(response.retryAfter, now) ?? undefined;
  let kind: FailureKind;
  if (status === 410 || (code !== undefined && GRAPH_CURSOR_CODES.has(code))) {
    kind = "cursor_expired";
  } else if (status === 429 || (status === 403 && GOOGLE_RATE_LIMIT_REASONS.has(code ?? ""))) {
    kind = "rate_limited";
  } else if (status === 401) {
    kind = "auth";
  } else if (isCalendarGone(provider, status, code)) {
    kind = "calendar_unavailable";
  } else if (status >= 500) {
    kind = "provider_unavailable";
  } else {
    kind = "provider_rejected";
  }
  const detail = message ? `: ${message.slice(0, 300)}` : "";
  return new SyncFailure({
    kind,
    status,
    providerCode: code,
    retryAfterMs,
    message: `${provider} answered HTTP ${status}${code ? ` ${code}` : ""}${detail}`,
  });
}

/** Classifies anything thrown during a sync that is not already a SyncFailure. */
export function classifyThrown(error: unknown): SyncFailure {
  if (error instanceof SyncFailure) return error;
  const err = error instanceof Error ? error : new Error(String(error));
  const code = (err as { code?: unknown }).code;
  if (isTimeout(err)) {
    return new SyncFailure({ kind: "timeout", message: err.message }, { cause: err });
  }
  if (err instanceof LeaseLostError) {
    return new SyncFailure({ kind: "lease_lost", message: err.message }, { cause: err });
  }
  if (isDatabaseError(err)) {
    return new SyncFailure(
      { kind: "database", message: `Database error: ${err.message}`, providerCode: asCode(code) },
      { cause: err },
    );
  }
  if (err instanceof TypeError && /fetch|network|connect|dns|tcp|socket/i.test(err.message)) {
    return new SyncFailure({ kind: "network", message: err.message }, { cause: err });
  }
  return new SyncFailure({ kind: "internal", message: err.message }, { cause: err });
}

function asCode(code: unknown): string | undefined {
  return typeof code === "string" ? code : undefined;
}

const NODE_NET_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
  "DEADLINE_EXCEEDED",
]);

// A SQLSTATE: five digits or upper-case letters, its class (first two) a digit pair or one of
// PostgreSQL's lettered classes. Node's and Deno's `E...` codes never match.
const SQLSTATE = /^([0-9][0-9A-Z]|F0|HV|P0|XX)[0-9A-Z]{3}$/;

/** True for `AbortSignal.timeout()`'s reason, a DOMException whose legacy code is TIMEOUT_ERR. */
function isTimeout(error: Error): boolean {
  return error instanceof DOMException && error.code === DOMException.TIMEOUT_ERR;
}

/**
 * True for errors raised by postgres.js or our database deadlines. postgres.js documents server
 * errors as PostgreSQL's own fields, `code` being the SQLSTATE, and its connection errors as
 * plain Errors with the codes listed above; matching those keeps this module free of the driver.
 */
export function isDatabaseError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error instanceof DatabaseDeadlineError) return true;
  const code = (error as { code?: unknown }).code;
  return typeof code === "string" && (NODE_NET_CODES.has(code) || SQLSTATE.test(code));
}
