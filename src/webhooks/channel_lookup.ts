/** @module Remembers channel secrets briefly, so a delivery usually costs one database statement. */
import type { Sql } from "../storage/client.ts";
import type { ProviderKind } from "../core/provider_kind.ts";
import { type ChannelIdentity, findChannels } from "../storage/webhook_channels.ts";
import { logger } from "../log/setup.ts";

const log = logger("webhooks");

/** Finds channels by provider channel id; cached hits skip the database. */
export type ChannelLookup = {
  /** The cached channel, if any and not expired: no database, no promise (the hot path). */
  cached(provider: ProviderKind, channelId: string): ChannelIdentity | undefined;
  /** Every one of the channels from the cache, or undefined when any would need the database. */
  cachedAll(
    provider: ProviderKind,
    channelIds: readonly string[],
  ): Map<string, ChannelIdentity> | undefined;
  find(
    sql: Sql,
    provider: ProviderKind,
    channelIds: readonly string[],
    signal?: AbortSignal,
  ): Promise<Map<string, ChannelIdentity>>;
};

/**
 * Creates the cache. Only channels that exist are cached: a channel's id and secret never
 * change, and a stale entry for a channel deleted since is harmless because the recording
 * statement finds the channel row again and records nothing without it. Unknown ids always go
 * to the database, so a channel created by another replica is found at once.
 */
export function createChannelLookup(
  options: {
    ttlMs?: number;
    maxEntries?: number;
    now?: () => number;
    /** Opens a secret sealed at rest (the SecretBox's `open`); identity when not given. */
    open?: (stored: string) => Promise<string>;
  } = {},
): ChannelLookup {
  const open = options.open ?? ((stored: string) => Promise.resolve(stored));
  const ttlMs = options.ttlMs ?? 60_000;
  const maxEntries = options.maxEntries ?? 10_000;
  const now = options.now ?? Date.now;
  const cache = new Map<string, { identity: ChannelIdentity; until: number }>();

  /** The cached channels among `channelIds`, and the ids that are not (or no longer) cached. */
  function fromCache(provider: ProviderKind, channelIds: readonly string[], time: number) {
    const found = new Map<string, ChannelIdentity>();
    const missing: string[] = [];
    for (const id of new Set(channelIds)) {
      const hit = cache.get(`${provider}:${id}`);
      if (hit && hit.until > time) found.set(id, hit.identity);
      else missing.push(id);
    }
    return { found, missing };
  }

  return {
    cached(provider, channelId) {
      const hit = cache.get(`${provider}:${channelId}`);
      return hit && hit.until > now() ? hit.identity : undefined;
    },
    cachedAll(provider, channelIds) {
      const { found, missing } = fromCache(provider, channelIds, now());
      return missing.length === 0 ? found : undefined;
    },
    async find(sql, provider, channelIds, signal) {
      const time = now();
      const { found, missing } = fromCache(provider, channelIds, time);
      if (missing.length === 0) return found;
      for (const stored of await findChannels(sql, provider, missing, signal)) {
        const identity = { ...stored, secret: await openSecret(open, stored) };
        found.set(identity.channelId, identity);
        const key = `${provider}:${identity.channelId}`;
        cache.delete(key);
        // Map iteration order is insertion order, so the first key is the oldest entry.
        if (cache.size >= maxEntries) cache.delete(cache.keys().next().value as string);
        cache.set(key, { identity, until: time + ttlMs });
      }
      return found;
    },
  };
}

/**
 * A secret that cannot be opened (sealed with a key no longer configured) becomes the empty
 * string, which no presented token equals: the delivery is refused as unauthenticated, and the
 * log says why, since the fix (restore the key) is the operator's.
 */
async function openSecret(
  open: (stored: string) => Promise<string>,
  identity: ChannelIdentity,
): Promise<string> {
  try {
    return await open(identity.secret);
  } catch (error) {
    log.error("Cannot open the stored secret of channel {channel_id}: {message}", {
      channel_id: identity.channelId,
      connection_id: identity.connectionId,
      message: (error as Error).message,
    });
    return "";
  }
}
