/** @module OAuth 2.0 refresh-token grant for Google and Microsoft identity platforms. */
import { z } from "zod";
import { SyncFailure } from "../failures/failure.ts";
import type { ProviderKind } from "../core/provider_kind.ts";
import { type FetchFn, fetchProviderJson } from "./provider_fetch.ts";

/** Client credentials and endpoint for one provider. */
export type OAuthClient = {
  provider: ProviderKind;
  tokenUrl: string;
  clientId?: string;
  clientSecret?: string;
  scope?: string;
};

/**
 * A fresh access token; `refreshToken` is set when the provider rotated it (Microsoft does), and
 * `idToken` when the grant included `openid` (it names the account).
 */
export type AccessGrant = {
  accessToken: string;
  expiresAt: number;
  refreshToken?: string;
  idToken?: string;
};

const TokenResponse = z.object({
  access_token: z.string().min(1),
  expires_in: z.coerce.number().positive().optional(),
  refresh_token: z.string().min(1).optional(),
  id_token: z.string().min(1).optional(),
  token_type: z.string().optional(),
});

// Answers that only the user can fix by signing in again (§1.6, §3.6): retrying never helps.
const REAUTH_CODES = new Set([
  "invalid_grant",
  "interaction_required",
  "consent_required",
  "login_required",
]);

/** Exchanges a refresh token; `invalid_grant` and its kin become `reauth_required` failures. */
export async function refreshAccessToken(
  client: OAuthClient,
  refreshToken: string,
  options: { timeoutMs: number; signal: AbortSignal; fetch?: FetchFn; now?: () => number },
): Promise<AccessGrant> {
  const form = new URLSearchParams({ grant_type: "refresh_token", refresh_token: refreshToken });
  if (client.clientId) form.set("client_id", client.clientId);
  if (client.clientSecret) form.set("client_secret", client.clientSecret);
  if (client.scope) form.set("scope", client.scope);
  let json: unknown;
  try {
    json = await fetchProviderJson(client.tokenUrl, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
      body: form.toString(),
    }, {
      provider: client.provider,
      timeoutMs: options.timeoutMs,
      signal: options.signal,
      fetch: options.fetch,
    });
  } catch (error) {
    if (error instanceof SyncFailure && REAUTH_CODES.has(error.providerCode ?? "")) {
      throw new SyncFailure({
        kind: "reauth_required",
        status: error.status,
        providerCode: error.providerCode,
        message:
          `Cannot refresh the access token: ${client.provider} answered ${error.providerCode}`,
      }, { cause: error });
    }
    if (
      error instanceof SyncFailure && (error.kind === "provider_rejected" || error.kind === "auth")
    ) {
      // A 400/401 from the token endpoint that is not invalid_grant (e.g. invalid_client) is an
      // operator problem with our credentials, not with the connection: back off and say so.
      throw new SyncFailure({
        kind: "auth",
        status: error.status,
        providerCode: error.providerCode,
        message: `Cannot refresh the access token: ${error.message}`,
      }, { cause: error });
    }
    throw error;
  }
  const parsed = TokenResponse.safeParse(json);
  if (!parsed.success) {
    throw new SyncFailure({
      kind: "malformed_response",
      status: 200,
      message: `${client.provider} token endpoint answered an unexpected body: ${
        parsed.error.issues[0]?.message ?? "invalid"
      }`,
    });
  }
  const now = options.now?.() ?? Date.now();
  return {
    accessToken: parsed.data.access_token,
    expiresAt: now + (parsed.data.expires_in ?? 3600) * 1000,
    refreshToken: parsed.data.refresh_token,
    idToken: parsed.data.id_token,
  };
}
