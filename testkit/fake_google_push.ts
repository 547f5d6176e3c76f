/**
 * @module Push channels of the fake Google provider: `events.watch`, `channels.stop` and header-only
 * notifications with Google's success/retry rules (wire formats §2).
 */
import { z } from "zod";
import { checkPolicy, type Deliverer, type DeliveryPolicy } from "./fake_delivery.ts";
import type { GoogleListError } from "./fake_google_calendar.ts";
import { randomToken } from "./fake_tokens.ts";

/** A watch channel as the fake keeps it. */
export type GoogleChannel = {
  id: string;
  resourceId: string;
  resourceUri: string;
  token?: string;
  expiration: number;
  address: string;
  calendarId: string;
  lastMessageNumber: number;
  stoppedAt: number | null;
};

/** One notification attempt (or a deliberate drop, attempt 0) sent to a channel's address. */
export type GoogleDelivery = {
  channelId: string;
  messageNumber: number;
  state: "sync" | "exists" | "not_exists";
  attempt: number;
  status: number | "error" | "timeout" | "dropped";
  at: number;
};

/** Delivery tuning; real Google numbers are unknown, so these are compressed for tests. */
export type GooglePushOptions = {
  retryBaseMs: number;
  maxAttempts: number;
  timeoutMs: number;
  dropRate: number;
  duplicateRate: number;
  stoppedGraceMs: number;
  maxChannelTtlMs: number;
};

/** Channel bookkeeping and notification delivery for one fake Google server. */
export type GooglePush = {
  readonly deliveries: GoogleDelivery[];
  watch(calendarId: string, body: unknown): { channel: Record<string, unknown> } | {
    error: GoogleListError;
  };
  stop(body: unknown): { stopped: true } | { error: GoogleListError };
  notify(calendarId: string, state?: "exists" | "not_exists"): void;
  channels(): GoogleChannel[];
};

const SUCCESS = new Set([102, 200, 201, 202, 204]);
const RETRYABLE = new Set([500, 502, 503, 504]);
const watchBody = z.object({
  id: z.string().min(1).max(64).regex(/^[A-Za-z0-9\-_+/=]+$/),
  type: z.enum(["web_hook", "webhook"]),
  address: z.string().refine((value) => URL.canParse(value)),
  token: z.string().max(256).optional(),
  expiration: z.union([z.string().regex(/^\d+$/), z.number().int()]).optional(),
  params: z.record(z.string(), z.string()).optional(),
  payload: z.boolean().optional(),
});
const stopBody = z.object({ id: z.string(), resourceId: z.string() });

function bodyError(body: unknown, required: string[]): GoogleListError | null {
  const record = typeof body === "object" && body !== null ? body as Record<string, unknown> : {};
  const missing = required.find((field) => record[field] === undefined || record[field] === null);
  return missing ? { status: 400, reason: "required", message: `Required: ${missing}` } : null;
}

/** Creates the push side of a fake Google server. */
export function createGooglePush(deliverer: Deliverer, options: GooglePushOptions): GooglePush {
  const channels = new Map<string, GoogleChannel>();
  const resourceIds = new Map<string, string>();
  const deliveries: GoogleDelivery[] = [];
  const policy: DeliveryPolicy = checkPolicy("Google push notifications", {
    maxAttempts: options.maxAttempts,
    baseDelayMs: options.retryBaseMs,
    timeoutMs: options.timeoutMs,
    isSuccess: (status) => SUCCESS.has(status),
    // Only these count as "try again" for Google; any other answer loses the message (§2.3).
    isRetryable: (outcome) => typeof outcome === "string" || RETRYABLE.has(outcome),
  });

  function deliver(channel: GoogleChannel, state: GoogleDelivery["state"], number: number): void {
    const headers: Record<string, string> = {
      "content-type": "application/json; utf-8",
      "user-agent": "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)",
      "x-goog-channel-id": channel.id,
      "x-goog-channel-expiration": new Date(channel.expiration).toUTCString(),
      "x-goog-resource-id": channel.resourceId,
      "x-goog-resource-uri": channel.resourceUri,
      "x-goog-resource-state": state,
      "x-goog-message-number": String(number),
    };
    if (channel.token !== undefined) headers["x-goog-channel-token"] = channel.token;
    deliverer.send({
      url: channel.address,
      headers,
      body: "",
      onAttempt(attempt, status) {
        deliveries.push({
          channelId: channel.id,
          messageNumber: number,
          state,
          attempt,
          status,
          at: Date.now(),
        });
      },
    }, policy);
  }

  function live(channel: GoogleChannel, now: number): boolean {
    if (channel.expiration <= now) return false;
    // Google keeps notifying a stopped channel for a while (§2.4); the grace period models that.
    return channel.stoppedAt === null || now - channel.stoppedAt < options.stoppedGraceMs;
  }

  return {
    deliveries,
    watch(calendarId, body) {
      const missing = bodyError(body, ["id", "type", "address"]);
      if (missing) return { error: missing };
      const parsed = watchBody.safeParse(body);
      if (!parsed.success) {
        const field = parsed.error.issues[0]?.path.join(".") ?? "body";
        return {
          error: { status: 400, reason: "invalid", message: `Invalid value for: ${field}` },
        };
      }
      const request = parsed.data;
      if (channels.has(request.id)) {
        const message = `Channel id ${request.id} not unique`;
        return { error: { status: 400, reason: "channelIdNotUnique", message } };
      }
      const now = Date.now();
      const requested = request.expiration === undefined ? Infinity : Number(request.expiration);
      if (requested <= now) {
        return {
          error: { status: 400, reason: "invalid", message: "Invalid value for: expiration" },
        };
      }
      let resourceId = resourceIds.get(calendarId);
      if (!resourceId) {
        resourceId = randomToken(20);
        resourceIds.set(calendarId, resourceId);
      }
      const channel: GoogleChannel = {
        id: request.id,
        resourceId,
        resourceUri: `https://www.googleapis.com/calendar/v3/calendars/${
          encodeURIComponent(calendarId)
        }/events?alt=json`,
        token: request.token,
        // "The more restrictive value is used" between the request and Google's own limit (§2.5).
        expiration: Math.min(requested, now + options.maxChannelTtlMs),
        address: request.address,
        calendarId,
        lastMessageNumber: 1,
        stoppedAt: null,
      };
      channels.set(channel.id, channel);
      // Sent without waiting, so it may arrive before the watch response, as §2.2 warns.
      deliver(channel, "sync", 1);
      const json: Record<string, unknown> = {
        kind: "api#channel",
        id: channel.id,
        resourceId: channel.resourceId,
        resourceUri: channel.resourceUri,
      };
      if (channel.token !== undefined) json.token = channel.token;
      json.expiration = String(channel.expiration);
      return { channel: json };
    },
    stop(body) {
      const missing = bodyError(body, ["id", "resourceId"]);
      if (missing) return { error: missing };
      const parsed = stopBody.safeParse(body);
      const channel = parsed.success ? channels.get(parsed.data.id) : undefined;
      if (
        !parsed.success || !channel || channel.resourceId !== parsed.data.resourceId ||
        channel.stoppedAt !== null || channel.expiration <= Date.now()
      ) {
        return { error: { status: 404, reason: "notFound" } };
      }
      channel.stoppedAt = Date.now();
      return { stopped: true };
    },
    notify(calendarId, state = "exists") {
      const now = Date.now();
      for (const channel of channels.values()) {
        if (channel.calendarId !== calendarId || !live(channel, now)) continue;
        // Message numbers grow but skip values, as Google's do (§2.2).
        const number = channel.lastMessageNumber + 2 + Math.floor(Math.random() * 97);
        channel.lastMessageNumber = number;
        if (Math.random() < options.dropRate) {
          const at = Date.now();
          deliveries.push({
            channelId: channel.id,
            messageNumber: number,
            state,
            attempt: 0,
            status: "dropped",
            at,
          });
          continue;
        }
        deliver(channel, state, number);
        if (Math.random() < options.duplicateRate) deliver(channel, state, number);
      }
    },
    channels() {
      return [...channels.values()].map((channel) => ({ ...channel }));
    },
  };
}
