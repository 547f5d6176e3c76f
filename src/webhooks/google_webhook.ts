/** @module `POST /webhooks/google`: Google push notifications, recorded once, acked after commit. */
import type { Context } from "hono";
import { DatabaseNotOpenError, HttpError } from "../core/errors.ts";
import type { Sql } from "../storage/client.ts";
import type { ChannelIdentity } from "../storage/webhook_channels.ts";
import { recordGoogleNotification, type RecordOutcome } from "../storage/webhook_dedupe_keys.ts";
import { logger } from "../log/setup.ts";
import { googleDedupeKey } from "./notification_keys.ts";
import { type GoogleNotification, parseGoogleNotification } from "./google_notification.ts";
import { secretsEqual } from "../crypto/secret_compare.ts";
import {
  count,
  errorFields,
  isJsonContentType,
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
  return await timed(deps, "google", (startedAt) => answer({ deps, c, startedAt }));
}

/** One delivery being answered: what every step needs. */
type Delivery = { deps: WebhookDeps; c: Context; startedAt: number };

async function answer(delivery: Delivery): Promise<Response> {
  const { deps, c } = delivery;
  const note = parseRequest(delivery);
  const sql = deps.sql();
  if (!sql) throw unavailable(deps, { note, error: new DatabaseNotOpenError() });
  const channel = await findChannel(delivery, { sql, note });
  if (!channel) {
    count(deps, "google", "ignored");
    log.info("Ignored a Google notification for an unknown channel", logFields(note));
    return c.json({ result: "ignored" }, 200);
  }
  authenticate(deps, { note, channel });
  if (note.state === "sync") {
    // The handshake after events.watch (message 1): nothing changed, so nothing to sync.
    count(deps, "google", "accepted");
    return c.json({ result: "sync" }, 200);
  }
  const outcome = await record(delivery, { sql, note });
  return respond(delivery, { note, channel, outcome });
}

/** Checks method, content type and headers; throws the 4xx answer for anything else. */
function parseRequest({ deps, c }: Delivery): GoogleNotification {
  if (c.req.method !== "POST") {
    count(deps, "google", "rejected");
    throw new HttpError(405, {
      type: "method_not_allowed",
      message: "Use POST for Google push notifications",
      headers: { allow: "POST" },
    });
  }
  const contentType = c.req.header("content-type") ?? null;
  if (contentType !== null && contentType.trim() !== "" && !isJsonContentType(contentType)) {
    count(deps, "google", "rejected");
    log.warn("Rejected a Google notification: unsupported content type", {
      provider: "google",
      content_type: contentType.slice(0, 100),
    });
    throw new HttpError(415, {
      type: "unsupported_media_type",
      message: "Google push notifications have no body or application/json",
    });
  }
  const parsed = parseGoogleNotification(c.req.raw.headers);
  if (!parsed.ok) {
    count(deps, "google", "rejected");
    log.warn("Rejected a Google notification: {message}", {
      provider: "google",
      message: parsed.problem.message,
    });
    const { status, error, message } = parsed.problem;
    throw new HttpError(status, { type: error, message });
  }
  return parsed.value;
}

/** The channel the notification names, or undefined when we do not know it (any more). */
async function findChannel(
  { deps, startedAt }: Delivery,
  { sql, note }: { sql: Sql; note: GoogleNotification },
): Promise<ChannelIdentity | undefined> {
  // A cached channel needs no database slot: only a miss goes through the gate.
  const hit = deps.lookup.cached("google", note.channelId);
  if (hit) return hit;
  try {
    const found = await deps.gate.run(
      "Google channel lookup",
      remaining(startedAt, deps.deadlineMs),
      ({ signal }) => deps.lookup.find(sql, "google", [note.channelId], signal),
    );
    return found.get(note.channelId);
  } catch (error) {
    throw unavailable(deps, { note, error });
  }
}

/** Throws a 403 unless the notification carries the channel's token and resource id. */
function authenticate(
  deps: WebhookDeps,
  { note, channel }: { note: GoogleNotification; channel: ChannelIdentity },
): void {
  // The log fields are built only for a refusal: an accepted delivery logs nothing here.
  const fields = () => ({ ...logFields(note), connection_id: channel.connectionId });
  if (note.token === null || !secretsEqual(channel.secret, note.token)) {
    count(deps, "google", "rejected");
    log.warn("Rejected a Google notification: channel token does not match", {
      ...fields(),
      problem: note.token === null ? "missing" : "mismatch",
    });
    throw new HttpError(403, { type: "forbidden", message: "Channel token does not match" });
  }
  if (channel.resourceId !== null && channel.resourceId !== note.resourceId) {
    count(deps, "google", "rejected");
    log.warn("Rejected a Google notification: resource id does not match the channel", fields());
    throw new HttpError(403, {
      type: "forbidden",
      message: "Resource id does not match the channel",
    });
  }
}

/**
 * Records the notification once (its dedupe key), requesting a sync, together with the
 * deliveries that arrive meanwhile; 503 when it cannot within the delivery's deadline. A delivery
 * whose connection a sync holds locked is recorded on its own, waiting for that lock, so it does
 * not hold up the others.
 */
async function record(
  { deps, startedAt }: Delivery,
  { sql, note }: { sql: Sql; note: GoogleNotification },
): Promise<RecordOutcome> {
  const entry = {
    key: googleDedupeKey(note.channelId, note.messageNumber),
    channelId: note.channelId,
  };
  try {
    const outcome = await deps.googleRecords.submit(entry, remaining(startedAt, deps.deadlineMs));
    if (outcome !== "deferred") return outcome;
    return await deps.gate.run(
      "Recording a Google notification",
      remaining(startedAt, deps.deadlineMs),
      (bounds) => recordGoogleNotification(sql, entry, bounds),
    );
  } catch (error) {
    throw unavailable(deps, { note, error });
  }
}

/** Counts and answers what the recording statement did; every outcome is a 200 to Google. */
function respond(
  { deps, c }: Delivery,
  { note, channel, outcome }: {
    note: GoogleNotification;
    channel: ChannelIdentity;
    outcome: RecordOutcome;
  },
): Response {
  if (outcome === "unknown_channel") {
    count(deps, "google", "ignored");
    log.info("Ignored a Google notification for a channel removed meanwhile", logFields(note));
    return c.json({ result: "ignored" }, 200);
  }
  count(deps, "google", outcome);
  if (outcome === "accepted") {
    // Lazy properties: at the default level (info) the object is never built.
    log.debug("Google notification recorded; sync requested", () => ({
      ...logFields(note),
      connection_id: channel.connectionId,
    }));
  }
  return c.json({ result: outcome }, 200);
}

function logFields(note: GoogleNotification): Record<string, unknown> {
  return {
    provider: "google",
    channel_id: note.channelId,
    message_number: note.messageNumber,
    resource_state: note.state,
  };
}

/** Counts and logs a delivery the database cannot take now; returns the 503 to throw. */
function unavailable(
  deps: WebhookDeps,
  { note, error }: { note: GoogleNotification; error: unknown },
): HttpError {
  count(deps, "google", "unavailable");
  log.error("Cannot record a Google notification: database unavailable; answered 503", {
    ...logFields(note),
    kind: "database",
    ...errorFields(error),
  });
  return new HttpError(503, {
    type: "unavailable",
    message: "Cannot record the notification now; retry later",
    headers: { "retry-after": "5" },
    cause: error,
  });
}
