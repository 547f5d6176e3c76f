/** @module Caches access tokens per connection and refreshes each at most once at a time. */
import type { ProviderKind } from "../core/provider_kind.ts";
import { SyncFailure } from "../failures/failure.ts";
import type { SecretBox } from "../crypto/secret_box.ts";
import type { FetchFn } from "./provider_fetch.ts";
import { type AccessGrant, type OAuthClient, refreshAccessToken } from "./oauth.ts";

/** What a token is refreshed for: a connection, with its (possibly sealed) refresh token. */
export type TokenOwner = { id: string; providerKind: ProviderKind; refreshToken: string };

/** Hands out valid access tokens for connections. */
export type AccessTokens<T extends TokenOwner = TokenOwner> = {
  get(connection: T, signal: AbortSignal): Promise<string>;
  /** Forgets a token the provider rejected with 401, so the next `get` refreshes. */
  invalidate(connectionId: string): void;
};

// Refresh a minute early so a token never expires between our check and the provider's.
const EARLY_REFRESH_MS = 60_000;

/**
 * Creates the token cache. A rotated refresh token is handed to `storeRotated` (the caller
 * stores it, fenced by its lease) before the new access token is used, so the newest refresh
 * token is never lost; providers never touch the database themselves.
 */
export function createAccessTokens<T extends TokenOwner>(options: {
  storeRotated: (connection: T, sealedRefreshToken: string) => Promise<unknown>;
  clients: Record<ProviderKind, OAuthClient>;
  timeoutMs: number;
  /** Refresh tokens are stored sealed; opened only here, right before use. */
  secrets: SecretBox;
  fetch?: FetchFn;
}): AccessTokens<T> {
  const cache = new Map<string, AccessGrant>();
  const inflight = new Map<string, Promise<AccessGrant>>();

  async function refresh(connection: T, signal: AbortSignal): Promise<AccessGrant> {
    let refreshToken: string;
    try {
      refreshToken = await options.secrets.open(connection.refreshToken);
    } catch (error) {
      throw new SyncFailure({
        kind: "internal",
        providerCode: "secret_unreadable",
        message: (error as Error).message,
      }, { cause: error });
    }
    const grant = await refreshAccessToken(
      options.clients[connection.providerKind],
      refreshToken,
      { timeoutMs: options.timeoutMs, signal, fetch: options.fetch },
    );
    if (grant.refreshToken && grant.refreshToken !== refreshToken) {
      // Microsoft rotates refresh tokens: keep the newest before anything else can fail.
      try {
        const sealed = await options.secrets.seal(grant.refreshToken);
        await options.storeRotated(connection, sealed);
        connection.refreshToken = sealed;
      } catch (error) {
        throw new SyncFailure({
          kind: "database",
          message: `Cannot store the rotated refresh token: ${(error as Error).message}`,
        }, { cause: error });
      }
    }
    cache.set(connection.id, grant);
    return grant;
  }

  return {
    async get(connection, signal) {
      const cached = cache.get(connection.id);
      if (cached && cached.expiresAt - EARLY_REFRESH_MS > Date.now()) return cached.accessToken;
      let pending = inflight.get(connection.id);
      if (!pending) {
        pending = refresh(connection, signal).finally(() => inflight.delete(connection.id));
        inflight.set(connection.id, pending);
      }
      return (await pending).accessToken;
    },
    invalidate(connectionId) {
      cache.delete(connectionId);
    },
  };
}
