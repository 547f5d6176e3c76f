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
const ChannelId = z.string().regex(
  /^[A-Za-z0-9\-_+/=]{1,64}$/,
  "must be 1-64 of A-Z a-z 0-9 - _ + / =",
);
// acceptedAsIs below checks these same rules by hand: change both together.
const Headers = z.object({
  "x-goog-channel-id": ChannelId,
  "x-goog-channel-token": z.string().max(256, "must be at most 256 characters").nullable(),
  "x-goog-message-number": z.string().regex(/^[0-9]{1,20}$/, "must be a positive integer"),
  "x-goog-resource-id": z.string().min(1).max(1024),
  "x-goog-resource-uri": z.string().min(1).max(4096),
  "x-goog-resource-state": z.enum(["sync", "exists", "not_exists"], {
    message: "must be sync, exists or not_exists",
  }),
});

const REQUIRED = [
  "x-goog-channel-id",
  "x-goog-message-number",
  "x-goog-resource-id",
  "x-goog-resource-uri",
  "x-goog-resource-state",
] as const;

const CHANNEL_ID = /^[A-Za-z0-9\-_+/=]{1,64}$/;
const MESSAGE_NUMBER = /^[0-9]{1,20}$/;
const STATES: ReadonlySet<string> = new Set(["sync", "exists", "not_exists"]);

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
    (token !== null && token.length > 256) ||
    messageNumber === null || !MESSAGE_NUMBER.test(messageNumber) ||
    !resourceId || resourceId.length > 1024 || !resourceUri || resourceUri.length > 4096 ||
    state === null || !STATES.has(state)
  ) return null;
  return {
    ok: true,
    value: {
      channelId,
      token,
      messageNumber: String(BigInt(messageNumber)),
      resourceId,
      resourceUri,
      state: state as GoogleNotification["state"],
    },
  };
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
    value: {
      channelId: h["x-goog-channel-id"],
      token: h["x-goog-channel-token"],
      messageNumber: String(BigInt(h["x-goog-message-number"])),
      resourceId: h["x-goog-resource-id"],
      resourceUri: h["x-goog-resource-uri"],
      state: h["x-goog-resource-state"],
    },
  };
}
