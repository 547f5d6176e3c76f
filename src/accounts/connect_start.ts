/** @module Starts a connect flow: a single-use state and a PKCE verifier, then the consent URL. */
import { ConnectError } from "../core/errors.ts";
import { sha256Hex } from "../crypto/sha256.ts";
import { findAccount } from "../storage/accounts.ts";
import { findProvider, type ProviderRow } from "../storage/calendar_providers.ts";
import { type ConnectCalendars, insertConnectState } from "../storage/connect_states.ts";
import { type ConnectDeps, redirectUriFor } from "./connect_deps.ts";
import { authorizationUrl } from "./oauth_endpoints.ts";
import { codeChallenge, randomUrlToken } from "./pkce.ts";

/** A flow waiting for the user: where to send them, until when, and how to wait for it. */
export type StartedConnect = {
  url: string;
  expiresAt: Date;
  stateHash: string;
  provider: ProviderRow;
};

/**
 * Starts a flow for the provider named (or with the id) `provider`. With `accountId` it
 * re-consents that account (its email as the login hint; Google's consent screen is skipped
 * only while the account is active, because only then is its refresh token worth keeping).
 */
export async function startConnect(
  deps: ConnectDeps,
  input: { provider: string; calendars?: ConnectCalendars; accountId?: string },
): Promise<StartedConnect> {
  const provider = await findProvider(deps.sql, input.provider);
  if (!provider) throw new ConnectError("unknown_provider", `No provider "${input.provider}"`);
  if (deps.publicUrl === null) {
    throw new ConnectError(
      "not_configured",
      "Cannot start a connect flow: CALSYNC_PUBLIC_URL is not set, so there is no redirect URI",
    );
  }
  const account = input.accountId ? await findAccount(deps.sql, input.accountId) : null;
  if (input.accountId && (!account || account.provider_id !== provider.id)) {
    throw new ConnectError(
      "unknown_provider",
      `No account "${input.accountId}" of ${provider.name}`,
    );
  }
  const state = randomUrlToken();
  const verifier = randomUrlToken();
  const redirectUri = redirectUriFor(deps.publicUrl, provider.name);
  const url = authorizationUrl(deps.endpoints[provider.kind], {
    redirectUri,
    state,
    codeChallenge: await codeChallenge(verifier),
    forceConsent: account?.status !== "active",
    loginHint: account?.email ?? null,
  });
  const stateHash = await sha256Hex(state);
  const { expiresAt } = await insertConnectState(deps.sql, {
    stateHash,
    providerId: provider.id,
    codeVerifier: await deps.secrets.seal(verifier),
    redirectUri,
    calendars: input.calendars ?? deps.defaultCalendars,
    ttlMs: deps.stateTtlMs,
    accountId: account?.id ?? null,
  });
  return { url, expiresAt, stateHash, provider };
}
