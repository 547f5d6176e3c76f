/** @module The authorization-code grant with the PKCE verifier (RFC 6749 §4.1.3, RFC 7636 §4.5). */
import { z } from "zod";
import { ConnectError } from "../core/errors.ts";
import { SyncFailure } from "../failures/failure.ts";
import { type FetchFn, fetchProviderJson } from "../providers/provider_fetch.ts";
import type { OAuthEndpoints } from "./oauth_endpoints.ts";

/** What the token endpoint handed out for a consent. */
export type CodeGrant = {
  accessToken: string;
  refreshToken: string | null;
  idToken: string;
  scopes: string[];
};

const GrantResponse = z.object({
  access_token: z.string().min(1),
  refresh_token: z.string().min(1).optional(),
  id_token: z.string().min(1),
  scope: z.string().optional(),
});

/** Exchanges `code` (with its verifier) for tokens; any refusal is an `exchange_failed`. */
export async function exchangeCode(
  endpoints: OAuthEndpoints,
  input: { code: string; codeVerifier: string; redirectUri: string },
  options: { timeoutMs: number; signal: AbortSignal; fetch?: FetchFn },
): Promise<CodeGrant> {
  const form = new URLSearchParams({
    grant_type: "authorization_code",
    code: input.code,
    redirect_uri: input.redirectUri,
    code_verifier: input.codeVerifier,
  });
  if (endpoints.clientId) form.set("client_id", endpoints.clientId);
  if (endpoints.clientSecret) form.set("client_secret", endpoints.clientSecret);
  if (endpoints.kind === "microsoft") form.set("scope", endpoints.scopes.join(" "));
  let json: unknown;
  try {
    json = await fetchProviderJson(endpoints.tokenUrl, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
      body: form.toString(),
    }, { provider: endpoints.kind, ...options });
  } catch (error) {
    const code = error instanceof SyncFailure ? error.providerCode ?? error.kind : "network";
    throw new ConnectError(
      "exchange_failed",
      `The ${endpoints.kind} token endpoint refused the authorization code (${code})`,
      { cause: error },
    );
  }
  const parsed = GrantResponse.safeParse(json);
  if (!parsed.success) {
    throw new ConnectError(
      "exchange_failed",
      `The ${endpoints.kind} token endpoint answered without an access token or id token`,
    );
  }
  return {
    accessToken: parsed.data.access_token,
    refreshToken: parsed.data.refresh_token ?? null,
    idToken: parsed.data.id_token,
    scopes: (parsed.data.scope ?? "").split(" ").filter(Boolean),
  };
}
