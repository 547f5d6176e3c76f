/**
 * @module OAuth token bookkeeping and opaque cursor encoding shared by the fake providers.
 */

/** What a refresh token is to the fake's authorization server. */
export type RefreshTokenState = "valid" | "revoked" | "unknown";

/** Result of checking an `Authorization: Bearer` header. */
export type BearerCheck = "valid" | "expired" | "unknown" | "missing";

/** Refresh and access tokens one fake provider knows about. */
export type TokenStore = {
  addRefreshToken(token: string): void;
  revokeRefreshToken(token: string): void;
  forgetRefreshToken(token: string): void;
  refreshTokenState(token: string): RefreshTokenState;
  currentRefreshTokens(): string[];
  issueAccessToken(ttlSeconds: number): string;
  checkBearer(authorization: string | null): BearerCheck;
  expireAccessTokens(): void;
};

/** Client credentials sent with a token request, from the form or HTTP Basic auth. */
export type ClientCredentials = { clientId?: string; clientSecret?: string };

const BASE32HEX = "0123456789abcdefghijklmnopqrstuv";

/** Random characters from `alphabet`, for ids that must look like the provider's. */
export function randomChars(length: number, alphabet = BASE32HEX): string {
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  let out = "";
  for (const byte of bytes) out += alphabet[byte % alphabet.length];
  return out;
}

/** Random base64url text of `bytes` random bytes. */
export function randomToken(bytes = 24): string {
  return base64Url(crypto.getRandomValues(new Uint8Array(bytes)));
}

function base64Url(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** Encodes a cursor so it is opaque to clients but cheap for the fake to read back. */
export function encodeOpaque(prefix: string, value: unknown): string {
  return prefix + base64Url(new TextEncoder().encode(JSON.stringify(value)));
}

/** Decodes a cursor made by {@link encodeOpaque}; garbage yields `undefined`. */
export function decodeOpaque(prefix: string, token: string): unknown {
  if (!token.startsWith(prefix)) return undefined;
  try {
    const b64 = token.slice(prefix.length).replaceAll("-", "+").replaceAll("_", "/");
    const binary = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
    const bytes = Uint8Array.from(binary, (char) => char.charCodeAt(0));
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    return undefined;
  }
}

/** Reads client credentials from a token request, preferring HTTP Basic like real servers do. */
export function readClientCredentials(
  form: URLSearchParams,
  authorization: string | null,
): ClientCredentials {
  const basic = authorization?.match(/^Basic\s+(\S+)$/i);
  if (basic) {
    try {
      const decoded = atob(basic[1]);
      const colon = decoded.indexOf(":");
      if (colon >= 0) {
        return {
          clientId: decodeURIComponent(decoded.slice(0, colon)),
          clientSecret: decodeURIComponent(decoded.slice(colon + 1)),
        };
      }
    } catch {
      // Fall through to the form fields: a broken header is the same as none here.
    }
  }
  return {
    clientId: form.get("client_id") ?? undefined,
    clientSecret: form.get("client_secret") ?? undefined,
  };
}

/** Creates a token store; `accessPrefix` makes access tokens look like the provider's. */
export function createTokenStore(
  accessPrefix: string,
  initial: readonly string[] = [],
): TokenStore {
  const refresh = new Map<string, "valid" | "revoked">();
  const access = new Map<string, number>();
  for (const token of initial) refresh.set(token, "valid");
  return {
    addRefreshToken(token) {
      refresh.set(token, "valid");
    },
    revokeRefreshToken(token) {
      if (refresh.has(token)) refresh.set(token, "revoked");
    },
    forgetRefreshToken(token) {
      refresh.delete(token);
    },
    refreshTokenState(token) {
      return refresh.get(token) ?? "unknown";
    },
    currentRefreshTokens() {
      return [...refresh].filter(([, state]) => state === "valid").map(([token]) => token);
    },
    issueAccessToken(ttlSeconds) {
      const token = accessPrefix + randomToken(32);
      access.set(token, Date.now() + ttlSeconds * 1000);
      return token;
    },
    checkBearer(authorization) {
      const match = authorization?.match(/^Bearer\s+(\S+)\s*$/i);
      if (!match) return "missing";
      const expiresAt = access.get(match[1]);
      if (expiresAt === undefined) return "unknown";
      return expiresAt > Date.now() ? "valid" : "expired";
    },
    expireAccessTokens() {
      for (const token of access.keys()) access.set(token, 0);
    },
  };
}
