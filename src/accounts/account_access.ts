/**
 * @module An access token for an account outside a sync (discovery, `connections add --calendar
 * all`): one refresh with the account's token, a rotated token stored on the account, and an
 * `invalid_grant` marks the account and its connections `reauth_required`, as a sync would.
 */
import { SyncFailure } from "../failures/failure.ts";
import { refreshAccessToken } from "../providers/oauth.ts";
import {
  accountCredentials,
  markAccountReauthRequired,
  replaceAccountToken,
} from "../storage/accounts.ts";
import type { ConnectDeps } from "./connect_deps.ts";
import { discoverCalendars, type DiscoveredCalendar } from "./calendar_discovery.ts";
import { MICROSOFT_SCOPES } from "./oauth_endpoints.ts";

/** Refreshes an account's access token; null when there is no such account. */
export async function accountAccessToken(
  deps: ConnectDeps,
  accountId: string,
  signal: AbortSignal,
): Promise<{ accessToken: string; providerKind: "google" | "microsoft" } | null> {
  const account = await accountCredentials(deps.sql, accountId);
  if (!account) return null;
  const endpoints = deps.endpoints[account.providerKind];
  const refreshToken = await deps.secrets.open(account.refreshToken);
  let grant;
  try {
    grant = await refreshAccessToken(
      {
        provider: account.providerKind,
        tokenUrl: endpoints.tokenUrl,
        clientId: endpoints.clientId ?? undefined,
        clientSecret: endpoints.clientSecret ?? undefined,
        scope: account.providerKind === "microsoft"
          ? MICROSOFT_SCOPES.filter((scope) => scope !== "openid" && scope !== "email").join(" ")
          : undefined,
      },
      refreshToken,
      { timeoutMs: deps.timeoutMs, signal, fetch: deps.fetch },
    );
  } catch (error) {
    if (error instanceof SyncFailure && error.kind === "reauth_required") {
      await markAccountReauthRequired(deps.sql, accountId, {
        kind: error.kind,
        provider_code: error.providerCode ?? null,
        message: error.message,
        at: new Date().toISOString(),
      });
    }
    throw error;
  }
  if (grant.refreshToken && grant.refreshToken !== refreshToken) {
    // A concurrent rotation (a running sync) wins; this one's token is just as valid.
    await replaceAccountToken(
      deps.sql,
      accountId,
      account.refreshToken,
      await deps.secrets.seal(grant.refreshToken),
    );
  }
  return { accessToken: grant.accessToken, providerKind: account.providerKind };
}

/** Every calendar the account can see; null when there is no such account. */
export async function listAccountCalendars(
  deps: ConnectDeps,
  accountId: string,
  signal: AbortSignal,
): Promise<DiscoveredCalendar[] | null> {
  const access = await accountAccessToken(deps, accountId, signal);
  if (access === null) return null;
  return await discoverCalendars(access.providerKind, access.accessToken, {
    googleBaseUrl: deps.googleBaseUrl,
    graphBaseUrl: deps.graphBaseUrl,
    timeoutMs: deps.timeoutMs,
    signal,
    fetch: deps.fetch,
  });
}
