/** @module Dedupe keys of webhook deliveries: equal for a provider's retries, distinct otherwise. */

import { sha256Hex } from "../crypto/sha256.ts";

/**
 * Google: the channel id plus the message number. Google numbers every message of a channel
 * with a growing number and resends a failed message with the same number, so the pair names
 * exactly one message; channel ids are our own UUIDs and never reused.
 */
export function googleDedupeKey(channelId: string, messageNumber: string): string {
  return `google:${channelId}:${messageNumber}`;
}

/** The fields of a Graph change notification that identify it. */
export type GraphChangeIdentity = {
  subscriptionId: string;
  changeType: string;
  resource: string;
  resourceDataId: string | null;
  etag: string | null;
  notificationId: string | null;
};

/**
 * Graph change notifications carry no delivery id we can rely on (`id` is optional), so the key
 * is a SHA-256 of the notification's identity: subscription, change type, resource, resource
 * data id and `@odata.etag`. A retry repeats all of them; a later change to the same event has
 * a new etag, so it is a new key; and the duplicate `updated` notifications Graph sends for one
 * change share the etag, so they collapse into one sync. Without an etag (some deletions) the
 * notification `id`, when present, keeps distinct deliveries apart. Hashing bounds the length
 * of keys built from resource paths of any size; the JSON array keeps fields from running into
 * each other.
 */
export async function graphChangeDedupeKey(identity: GraphChangeIdentity): Promise<string> {
  const parts = [
    identity.subscriptionId,
    identity.changeType,
    identity.resource,
    identity.resourceDataId,
    identity.etag,
    identity.etag === null ? identity.notificationId : null,
  ];
  return `microsoft:${await sha256Hex(JSON.stringify(parts))}`;
}

/**
 * Graph lifecycle notifications have no resource; a retry repeats the subscription, event,
 * subscription expiry (and `id`, if any), while a later warning about the same subscription
 * after a renewal names a new expiry.
 */
export async function graphLifecycleDedupeKey(identity: {
  subscriptionId: string;
  lifecycleEvent: string;
  subscriptionExpirationDateTime: string | null;
  notificationId: string | null;
}): Promise<string> {
  const parts = [
    "lifecycle",
    identity.subscriptionId,
    identity.lifecycleEvent,
    identity.subscriptionExpirationDateTime,
    identity.notificationId,
  ];
  return `microsoft:${await sha256Hex(JSON.stringify(parts))}`;
}
