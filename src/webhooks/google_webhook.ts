/** @module `POST /webhooks/google`: Google push notifications, recorded once, acked after commit. */
import type { Context } from "hono";
import { withDeadline } from "../storage/client.ts";
import { recordGoogleNotification } from "../storage/webhook_dedupe_keys.ts";
import { logger } from "../log/setup.ts";
import { googleDedupeKey } from "./notification_keys.ts";
import { parseGoogleNotification } from "./google_notification.ts";
import { secretsEqual } from "./secret_compare.ts";
import {
  count,
  errorFields,
  isJsonContentType,
  problem,
  remaining,
  timed,
  type WebhookDeps,
} from "./webhook_deps.ts";

const log = logger("webhooks");

/**
 * Handles one Google notification. Google counts 200/201/202/204/102 as delivered and retries
 * only 500/502/503/504, so: 200 once recorded (or a duplicate, or a channel we no longer know,
 * which Google may keep notifying for a while after channels.stop), 503 when the database cannot
 * record it, and a 4xx that Google will not retry for anything forged or malformed.
 */
export async function handleGoogleWebhook(deps: WebhookDeps, c: Context): Promise<Response> {
  return await timed(deps, "google", (startedAt) => answer(deps, c, startedAt));
}

async function answer(deps: WebhookDeps, c: Context, startedAt: number): Promise<Response> {
  if (c.req.method !== "POST") {
    count(deps, "google", "rejected");
    return problem(c, 405, "method_not_allowed", "Use POST for Google push notifications", {
      allow: "POST",
    });
  }
  const contentType = c.req.header("content-type") ?? null;
  if (contentType !== null && contentType.trim() !== "" && !isJsonContentType(contentType)) {
    count(deps, "google", "rejected");
    log.warn("Rejected a Google notification: unsupported content type", {
      provider: "google",
      content_type: contentType.slice(0, 100),
    });
    return problem(
      c,
      415,
      "unsupported_media_type",
      "Google push notifications have no body or application/json",
    );
  }
  const parsed = parseGoogleNotification(c.req.raw.headers);
  if (!parsed.ok) {
    count(deps, "google", "rejected");
    log.warn("Rejected a Google notification: {message}", {
      provider: "google",
      message: parsed.problem.message,
    });
    return problem(c, parsed.problem.status, parsed.problem.error, parsed.problem.message);
  }
  const note = parsed.value;
  const fields = {
    provider: "google",
    channel_id: note.channelId,
    message_number: note.messageNumber,
    resource_state: note.state,
  };
  const sql = deps.sql();
  if (!sql) return unavailable(deps, c, fields, new Error("The database is not open yet"));

  let channel;
  try {
    const found = await withDeadline(
      deps.lookup.find(sql, "google", [note.channelId]),
      remaining(startedAt, deps.deadlineMs),
      "Google channel lookup",
    );
    channel = found.get(note.channelId);
  } catch (error) {
    return unavailable(deps, c, fields, error);
  }
  if (!channel) {
    count(deps, "google", "ignored");
    log.info("Ignored a Google notification for an unknown channel", fields);
    return c.json({ result: "ignored" }, 200);
  }
  if (note.token === null || !secretsEqual(channel.secret, note.token)) {
    count(deps, "google", "rejected");
    log.warn("Rejected a Google notification: channel token does not match", {
      ...fields,
      connection_id: channel.connectionId,
      problem: note.token === null ? "missing" : "mismatch",
    });
    return problem(c, 403, "forbidden", "Channel token does not match");
  }
  if (channel.resourceId !== null && channel.resourceId !== note.resourceId) {
    count(deps, "google", "rejected");
    log.warn("Rejected a Google notification: resource id does not match the channel", {
      ...fields,
      connection_id: channel.connectionId,
    });
    return problem(c, 403, "forbidden", "Resource id does not match the channel");
  }
  if (note.state === "sync") {
    // The handshake after events.watch (message 1): nothing changed, so nothing to sync.
    count(deps, "google", "accepted");
    return c.json({ result: "sync" }, 200);
  }

  let outcome;
  try {
    outcome = await withDeadline(
      recordGoogleNotification(sql, {
        key: googleDedupeKey(note.channelId, note.messageNumber),
        channelId: note.channelId,
      }),
      remaining(startedAt, deps.deadlineMs),
      "Recording a Google notification",
    );
  } catch (error) {
    return unavailable(deps, c, fields, error);
  }
  if (outcome === "unknown_channel") {
    count(deps, "google", "ignored");
    log.info("Ignored a Google notification for a channel removed meanwhile", fields);
    return c.json({ result: "ignored" }, 200);
  }
  count(deps, "google", outcome);
  if (outcome === "accepted") {
    log.debug("Google notification recorded; sync requested", {
      ...fields,
      connection_id: channel.connectionId,
    });
  }
  return c.json({ result: outcome }, 200);
}

function unavailable(
  deps: WebhookDeps,
  c: Context,
  fields: Record<string, unknown>,
  error: unknown,
): Response {
  count(deps, "google", "unavailable");
  log.error("Cannot record a Google notification: database unavailable; answered 503", {
    ...fields,
    kind: "database",
    ...errorFields(error),
  });
  return problem(c, 503, "unavailable", "Cannot record the notification now; retry later", {
    "retry-after": "5",
  });
}
