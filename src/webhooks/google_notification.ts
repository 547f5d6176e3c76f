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

/** Parses the notification headers; never throws. */
export function parseGoogleNotification(
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
