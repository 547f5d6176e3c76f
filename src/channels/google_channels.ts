/** @module Google Calendar push channels: `events.watch` and `channels.stop` (wire formats §2). */
import { z } from "zod";
import { SyncFailure } from "../failures/failure.ts";
import type { ChannelWork } from "./channel_deps.ts";
import { parseExpiry } from "./channel_timing.ts";
import { callProvider } from "./provider_call.ts";

const WatchResponse = z.object({
  id: z.string().min(1),
  resourceId: z.string().min(1),
  expiration: z.union([z.string(), z.number()]).optional(),
}).loose();

/** Joins the public base URL and a webhook path, keeping any path prefix of the base. */
export function webhookAddress(publicUrl: string, path: string): string {
  return publicUrl.replace(/\/+$/, "") + path;
}

/** Opens a channel with our own id and token; resolves to Google's resource id and expiry. */
export async function watchGoogleCalendar(
  work: ChannelWork,
  channel: { channelId: string; secret: string; expiresAt: number; address: string },
): Promise<{ resourceId: string; expiresAt: number }> {
  const base = work.deps.googleBaseUrl.replace(/\/+$/, "");
  const calendar = encodeURIComponent(work.connection.externalCalendarId);
  const json = await callProvider(work, {
    method: "POST",
    url: `${base}/calendars/${calendar}/events/watch`,
    body: {
      id: channel.channelId,
      type: "web_hook",
      address: channel.address,
      token: channel.secret,
      expiration: channel.expiresAt,
    },
  });
  const parsed = WatchResponse.safeParse(json);
  if (!parsed.success || parsed.data.id !== channel.channelId) {
    throw new SyncFailure({
      kind: "malformed_response",
      status: 200,
      message: "Google answered events.watch with a body that is not the channel we asked for",
    });
  }
  // "The more restrictive value is used": Google may shorten the expiry we asked for.
  const expiresAt = parseExpiry(parsed.data.expiration) ?? channel.expiresAt;
  return { resourceId: parsed.data.resourceId, expiresAt };
}

/** Stops a channel; a 404 (already stopped or expired) counts as stopped. */
export async function stopGoogleChannel(
  work: ChannelWork,
  channel: { channelId: string; resourceId: string },
): Promise<void> {
  const base = work.deps.googleBaseUrl.replace(/\/+$/, "");
  try {
    await callProvider(work, {
      method: "POST",
      url: `${base}/channels/stop`,
      body: { id: channel.channelId, resourceId: channel.resourceId },
      emptyOk: true,
    });
  } catch (error) {
    if (error instanceof SyncFailure && error.status === 404) return;
    throw error;
  }
}
