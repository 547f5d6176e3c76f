/** @module Caches access tokens per account and refreshes each at most once at a time. */
import type { ProviderKind } from "../core/provider_kind.ts";
import { SyncFailure } from "../failures/failure.ts";
import type { SecretBox } from "../crypto/secret_box.ts";
import type { FetchFn } from "./provider_fetch.ts";
import { type AccessGrant, type OAuthClient, refreshAccessToken } from "./oauth.ts";

/**
 * What a token is refreshed for: a connection, with its account's (possibly sealed) refresh
 * token. Connections of one account share one access token; a v1 row without an account
 * (`accountId` null) has its own.
 */
export type TokenOwner = {
  id: string;
  accountId?: string | null;
  providerKind: ProviderKind;
  refreshToken: string;
};

/** The cache key of an owner's access token: its account, else the connection itself. */
export function tokenKey(owner: TokenOwner): string {
  return owner.accountId ? `account:${owner.accountId}` : `connection:${owner.id}`;
}

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
  /** Called (best effort: its failure is ignored) with an id token a refresh returned. */
  onIdToken?: (owner: T, idToken: string) => Promise<unknown>;
}): AccessTokens<T> {
  const cache = new Map<string, AccessGrant>();
  const inflight = new Map<string, Promise<AccessGrant>>();
  // The newest sealed refresh token per key: another calendar of the account, claimed before a
  // rotation, still carries the token that rotation replaced.
  const newest = new Map<string, string>();
  const keyOf = new Map<string, string>();

  async function refresh(connection: T, key: string, signal: AbortSignal): Promise<AccessGrant> {
    let refreshToken: string;
    try {
      refreshToken = await options.secrets.open(newest.get(key) ?? connection.refreshToken);
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
        newest.set(key, sealed);
      } catch (error) {
        throw new SyncFailure({
          kind: "database",
          message: `Cannot store the rotated refresh token: ${(error as Error).message}`,
        }, { cause: error });
      }
    }
    cache.set(key, grant);
    if (grant.idToken && options.onIdToken) {
      // Best effort: who the account is never stands in the way of its sync.
      await options.onIdToken(connection, grant.idToken).catch(() => {});
    }
    return grant;
  }

  return {
    async get(connection, signal) {
      const key = tokenKey(connection);
      keyOf.set(connection.id, key);
      const cached = cache.get(key);
      if (cached && cached.expiresAt - EARLY_REFRESH_MS > Date.now()) return cached.accessToken;
      let pending = inflight.get(key);
      if (!pending) {
        pending = refresh(connection, key, signal).finally(() => inflight.delete(key));
        inflight.set(key, pending);
      }
      return (await pending).accessToken;
    },
    invalidate(connectionId) {
      // A 401 on one calendar means the account's shared access token is bad for all of them.
      cache.delete(keyOf.get(connectionId) ?? `connection:${connectionId}`);
    },
  };
}
