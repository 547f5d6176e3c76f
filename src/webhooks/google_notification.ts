/** @module Validates the headers of a Google push notification (wire formats §2.2). */
import { z } from "zod";

/** A Google notification whose headers passed validation. */
export type GoogleNotification = {
  channelId: string;
  /** Absent when the channel was created without a token; calsync always sets one. */
  token: string | null;
  messageNumber: string;
  resourceId: string;
  resourceUri: string;
  state: "sync" | "exists" | "not_exists";
};

/** Why headers were refused: a 4xx status, a stable code and a message naming the header. */
export type HeaderProblem = {
  status: 400;
  error: "missing_header" | "invalid_header";
  message: string;
};

// Google's channel id rule (≤ 64 characters of this set); it also keeps keys safe for SQL text.
const CHANNEL_ID = /^[A-Za-z0-9\-_+/=]{1,64}$/;
const MESSAGE_NUMBER = /^[0-9]{1,20}$/;
const STATES = ["sync", "exists", "not_exists"] as const;
const STATE_SET: ReadonlySet<string> = new Set(STATES);
const MAX = { token: 256, resourceId: 1024, resourceUri: 4096 };

// The rules, for the exact problem of a refused delivery; acceptedAsIs checks the same ones.
const Headers = z.object({
  "x-goog-channel-id": z.string().regex(CHANNEL_ID, "must be 1-64 of A-Z a-z 0-9 - _ + / ="),
  "x-goog-channel-token": z.string().max(MAX.token, "must be at most 256 characters").nullable(),
  "x-goog-message-number": z.string().regex(MESSAGE_NUMBER, "must be a positive integer"),
  "x-goog-resource-id": z.string().min(1).max(MAX.resourceId),
  "x-goog-resource-uri": z.string().min(1).max(MAX.resourceUri),
  "x-goog-resource-state": z.enum(STATES, { message: "must be sync, exists or not_exists" }),
});

const REQUIRED = [
  "x-goog-channel-id",
  "x-goog-message-number",
  "x-goog-resource-id",
  "x-goog-resource-uri",
  "x-goog-resource-state",
] as const;

/** Parses the notification headers; never throws. */
export function parseGoogleNotification(
  headers: { get(name: string): string | null },
): { ok: true; value: GoogleNotification } | { ok: false; problem: HeaderProblem } {
  return acceptedAsIs(headers) ?? parseStrictly(headers);
}

/**
 * The notification when every header passes the same rules as `Headers` (the schema), checked
 * by hand: zod costs more than the rest of the parse on every delivery. Null for anything the
 * schema might refuse, which then goes through it for the exact problem.
 */
function acceptedAsIs(
  headers: { get(name: string): string | null },
): { ok: true; value: GoogleNotification } | null {
  const channelId = headers.get("x-goog-channel-id");
  const token = headers.get("x-goog-channel-token");
  const messageNumber = headers.get("x-goog-message-number");
  const resourceId = headers.get("x-goog-resource-id");
  const resourceUri = headers.get("x-goog-resource-uri");
  const state = headers.get("x-goog-resource-state");
  if (
    channelId === null || !CHANNEL_ID.test(channelId) ||
    (token !== null && token.length > MAX.token) ||
    messageNumber === null || !MESSAGE_NUMBER.test(messageNumber) ||
    !resourceId || resourceId.length > MAX.resourceId ||
    !resourceUri || resourceUri.length > MAX.resourceUri ||
    state === null || !STATE_SET.has(state)
  ) return null;
  return {
    ok: true,
    value: notification({
      channelId,
      token,
      messageNumber,
      resourceId,
      resourceUri,
      state: state as GoogleNotification["state"],
    }),
  };
}

/** The notification from headers that passed the rules; the message number in canonical form. */
function notification(valid: GoogleNotification): GoogleNotification {
  return { ...valid, messageNumber: String(BigInt(valid.messageNumber)) };
}

function parseStrictly(
  headers: { get(name: string): string | null },
): { ok: true; value: GoogleNotification } | { ok: false; problem: HeaderProblem } {
  const missing = REQUIRED.filter((name) => !headers.get(name));
  if (missing.length > 0) {
    return {
      ok: false,
      problem: {
        status: 400,
        error: "missing_header",
        message: `Missing required header${missing.length > 1 ? "s" : ""}: ${missing.join(", ")}`,
      },
    };
  }
  const input: Record<string, string | null> = {};
  for (const name of [...REQUIRED, "x-goog-channel-token"]) input[name] = headers.get(name);
  const parsed = Headers.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return {
      ok: false,
      problem: {
        status: 400,
        error: "invalid_header",
        message: `Invalid header ${String(issue?.path[0] ?? "")}: ${issue?.message ?? "invalid"}`,
      },
    };
  }
  const h = parsed.data;
  return {
    ok: true,
    value: notification({
      channelId: h["x-goog-channel-id"],
      token: h["x-goog-channel-token"],
      messageNumber: h["x-goog-message-number"],
      resourceId: h["x-goog-resource-id"],
      resourceUri: h["x-goog-resource-uri"],
      state: h["x-goog-resource-state"],
    }),
  };
}
