/** @module Microsoft Graph change-notification subscriptions: create, renew, delete (§4.1). */
import { z } from "zod";
import { SyncFailure } from "../failures/failure.ts";
import type { ChannelWork } from "./channel_deps.ts";
import { parseExpiry } from "./channel_timing.ts";
import { callProvider } from "./provider_call.ts";

const Subscription = z.object({
  id: z.string().regex(/^[A-Za-z0-9\-_.:]{1,256}$/),
  expirationDateTime: z.string().optional(),
}).loose();

/** The subscription resource for a calendar: the default calendar is `me/events`. */
export function graphSubscriptionResource(calendarId: string): string {
  return calendarId === "primary"
    ? "me/events"
    : `me/calendars/${encodeURIComponent(calendarId)}/events`;
}

function parse(json: unknown, what: string): { id: string; expiresAt: number | null } {
  const parsed = Subscription.safeParse(json);
  if (!parsed.success) {
    throw new SyncFailure({
      kind: "malformed_response",
      status: 200,
      message: `Microsoft Graph answered ${what} with a body that is not a subscription`,
    });
  }
  return { id: parsed.data.id, expiresAt: parseExpiry(parsed.data.expirationDateTime) };
}

/**
 * Creates a subscription. Graph validates our endpoint during this call (the webhook answers
 * without a database lookup), so there is no row to find yet and none is needed.
 */
export async function createGraphSubscription(
  work: ChannelWork,
  subscription: { secret: string; expiresAt: number; address: string },
): Promise<{ subscriptionId: string; expiresAt: number }> {
  const base = work.deps.graphBaseUrl.replace(/\/+$/, "");
  const json = await callProvider(work, {
    method: "POST",
    url: `${base}/subscriptions`,
    body: {
      changeType: "created,updated,deleted",
      notificationUrl: subscription.address,
      // Lifecycle events (reauthorizationRequired, subscriptionRemoved, missed) go to the same
      // endpoint, which tells them apart by their `lifecycleEvent` field.
      lifecycleNotificationUrl: subscription.address,
      resource: graphSubscriptionResource(work.connection.externalCalendarId),
      expirationDateTime: new Date(subscription.expiresAt).toISOString(),
      clientState: subscription.secret,
    },
  });
  const created = parse(json, "the subscription create");
  return { subscriptionId: created.id, expiresAt: created.expiresAt ?? subscription.expiresAt };
}

/** Extends a subscription; throws SyncFailure with status 404 when Graph no longer has it. */
export async function renewGraphSubscription(
  work: ChannelWork,
  subscription: { subscriptionId: string; expiresAt: number },
): Promise<{ expiresAt: number }> {
  const base = work.deps.graphBaseUrl.replace(/\/+$/, "");
  const json = await callProvider(work, {
    method: "PATCH",
    url: `${base}/subscriptions/${encodeURIComponent(subscription.subscriptionId)}`,
    body: { expirationDateTime: new Date(subscription.expiresAt).toISOString() },
  });
  return { expiresAt: parse(json, "the renewal").expiresAt ?? subscription.expiresAt };
}

/** Deletes a subscription; a 404 (expired or already deleted) counts as deleted. */
export async function deleteGraphSubscription(
  work: ChannelWork,
  subscriptionId: string,
): Promise<void> {
  const base = work.deps.graphBaseUrl.replace(/\/+$/, "");
  try {
    await callProvider(work, {
      method: "DELETE",
      url: `${base}/subscriptions/${encodeURIComponent(subscriptionId)}`,
      emptyOk: true,
    });
  } catch (error) {
    if (error instanceof SyncFailure && error.status === 404) return;
    throw error;
  }
}
