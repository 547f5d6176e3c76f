/**
 * @module Reads the claims of the id token the code exchange returned. It came straight from the
 * token endpoint over TLS, so OpenID Connect Core §3.1.3.7 lets the client skip the signature;
 * the issuer, audience and expiry are still checked, so a token meant for someone else is refused.
 */
import { z } from "zod";
import type { ProviderKind } from "../core/provider_kind.ts";
import { ConnectError } from "../core/errors.ts";

/** Who consented: the account's stable subject and its display email. */
export type ConsentIdentity = { subject: string; email: string | null };

function invalid(message: string): ConnectError {
  return new ConnectError("id_token_invalid", message);
}

const Claims = z.object({
  iss: z.string().min(1),
  aud: z.union([z.string(), z.array(z.string())]),
  exp: z.number(),
  sub: z.string().min(1),
  email: z.string().optional(),
  preferred_username: z.string().optional(),
  oid: z.string().optional(),
  tid: z.string().optional(),
});

/** The payload of a compact JWS, unverified. */
export function decodeJwtPayload(token: string): unknown {
  const parts = token.split(".");
  if (parts.length !== 3) throw invalid("The id token is not a compact JWT");
  try {
    const b64 = parts[1].replaceAll("-", "+").replaceAll("_", "/");
    const binary = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0))));
  } catch {
    throw invalid("The id token's payload is not base64url JSON");
  }
}

/** What an id token must say: who issued it (per provider) and for which client. */
export type IdTokenExpectation = {
  kind: ProviderKind;
  clientId: string;
  /** Google: the issuer itself. Microsoft: the origin before `/{tid}/v2.0`. */
  issuerOrigin: string;
  /** Microsoft: a tenant id to insist on (null for common, organizations, consumers). */
  tenantId: string | null;
  nowMs: number;
};

/** Checks `iss`, `aud` and `exp` and returns the account's identity (Microsoft: `tid/oid`). */
export function readIdToken(token: string, expect: IdTokenExpectation): ConsentIdentity {
  const parsed = Claims.safeParse(decodeJwtPayload(token));
  if (!parsed.success) throw invalid("The id token lacks iss, aud, exp or sub");
  const claims = parsed.data;
  const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!audiences.includes(expect.clientId)) {
    throw invalid("The id token was issued for another client (aud)");
  }
  // One minute of clock skew, no more: the token was minted a moment ago.
  if (claims.exp * 1000 < expect.nowMs - 60_000) throw invalid("The id token expired");
  if (expect.kind === "google") {
    const issuers = [expect.issuerOrigin];
    if (expect.issuerOrigin === "https://accounts.google.com") issuers.push("accounts.google.com");
    if (!issuers.includes(claims.iss)) throw invalid("The id token's issuer is not Google");
    return { subject: claims.sub, email: claims.email ?? null };
  }
  if (!claims.oid || !claims.tid) throw invalid("The id token lacks oid or tid");
  if (expect.tenantId !== null && claims.tid !== expect.tenantId) {
    throw invalid("The id token is from another tenant");
  }
  if (claims.iss !== `${expect.issuerOrigin}/${claims.tid}/v2.0`) {
    throw invalid("The id token's issuer is not the Microsoft identity platform");
  }
  return {
    subject: `${claims.tid}/${claims.oid}`,
    email: claims.email ?? claims.preferred_username ?? null,
  };
}
