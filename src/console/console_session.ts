/**
 * @module Console sessions: a signed, expiring cookie value and the CSRF token bound to it.
 * Stateless (any replica with the same admin token accepts it); logout revokes the session id
 * in this process until it would have expired anyway.
 */

/** A verified session. */
export type ConsoleSession = {
  id: string;
  expiresAt: number;
  /** The token every form of this session carries; derived from the id, never stored. */
  csrf: string;
};

/** Issues and verifies sessions with one key. */
export type SessionKeeper = {
  issue(now: number): Promise<{ cookie: string; session: ConsoleSession }>;
  verify(cookie: string | undefined, now: number): Promise<ConsoleSession | null>;
  revoke(session: ConsoleSession): void;
  /** True when `presented` is this session's CSRF token. */
  csrfMatches(session: ConsoleSession, presented: string | undefined): boolean;
};

const encoder = new TextEncoder();

function base64url(bytes: ArrayBuffer): string {
  return btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function sameText(a: string, b: string): boolean {
  // Both sides are HMAC outputs of fixed length; compare without an early exit anyway.
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return difference === 0;
}

/**
 * The signing key: an HMAC of a fixed label under the admin token, so a new token ends every
 * session and the cookie never holds (or reveals) the token itself.
 */
export async function sessionKeyFromToken(token: string): Promise<CryptoKey> {
  const base = await crypto.subtle.importKey(
    "raw",
    encoder.encode(token),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const derived = await crypto.subtle.sign("HMAC", base, encoder.encode("calsync console v1"));
  return await crypto.subtle.importKey(
    "raw",
    derived,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
}

/** Creates a keeper issuing sessions valid for `ttlMs` (the key may still be being derived). */
export function createSessionKeeper(
  key: CryptoKey | Promise<CryptoKey>,
  ttlMs: number,
): SessionKeeper {
  const revoked = new Map<string, number>();
  const sign = async (text: string) =>
    base64url(await crypto.subtle.sign("HMAC", await key, encoder.encode(text)));
  const session = async (id: string, expiresAt: number): Promise<ConsoleSession> => ({
    id,
    expiresAt,
    csrf: await sign(`csrf.${id}`),
  });
  return {
    async issue(now) {
      const id = crypto.randomUUID();
      const expiresAt = now + ttlMs;
      const body = `${id}.${expiresAt}`;
      return { cookie: `${body}.${await sign(body)}`, session: await session(id, expiresAt) };
    },
    async verify(cookie, now) {
      const match = /^([0-9a-f-]{36})\.(\d{1,15})\.([A-Za-z0-9_-]{43})$/.exec(cookie ?? "");
      if (!match) return null;
      const [, id, expiry, signature] = match;
      if (!sameText(await sign(`${id}.${expiry}`), signature)) return null;
      const expiresAt = Number(expiry);
      if (expiresAt <= now || revoked.has(id)) return null;
      return await session(id, expiresAt);
    },
    revoke(s) {
      for (const [id, until] of revoked) if (until <= Date.now()) revoked.delete(id);
      revoked.set(s.id, s.expiresAt);
    },
    csrfMatches(s, presented) {
      return typeof presented === "string" && sameText(s.csrf, presented);
    },
  };
}

/** A short, non-secret name of a session for logs ("who did it"). */
export function sessionLabel(session: ConsoleSession): string {
  return `console:${session.id.slice(0, 8)}`;
}
