/**
 * @module The consent half of the fake providers: users, the authorization endpoint (consent is
 * automatic, or denied when a test says so), the authorization-code exchange with PKCE S256
 * verification, id tokens, and which user an access or refresh token belongs to.
 */
import { createHash } from "node:crypto";
import { randomToken, type TokenStore } from "./fake_tokens.ts";

/** One calendar of a fake user, as the calendar list shows it. */
export type FakeCalendarEntry = {
  id: string;
  name: string;
  primary?: boolean;
  accessRole?: "owner" | "writer" | "reader" | "freeBusyReader";
};

/** A user who can consent; Microsoft users also have a tenant. */
export type FakeUser = {
  subject: string;
  email: string;
  tenant?: string;
  calendars: FakeCalendarEntry[];
};

type IssuedCode = {
  subject: string;
  clientId: string;
  redirectUri: string;
  challenge: string;
  scope: string;
  used: boolean;
};

/** What a code exchange yields, or the OAuth error the provider answers with. */
export type CodeExchange =
  | { ok: true; user: FakeUser; scope: string; clientId: string }
  | { ok: false; error: string; description: string };

/** The users and codes of one fake provider. */
export type ConsentServer = {
  addUser(user: FakeUser): void;
  user(subject: string): FakeUser | undefined;
  /** Who consents on the next visits to the authorization endpoint; null denies. */
  consentAs(subject: string | null): void;
  /** Answers the authorization endpoint: a 302 back to `redirect_uri`, or a 400 page. */
  authorize(url: URL, clientId?: string): Response;
  exchangeCode(form: URLSearchParams, clientId: string | undefined): CodeExchange;
  /** A refresh token and an access token for `user` (bound to them). */
  issueTokens(user: FakeUser, ttl: number): { refreshToken: string; accessToken: string };
  /** The user a refresh or access token belongs to (undefined for tokens tests added). */
  ownerOf(token: string): FakeUser | undefined;
  bind(token: string, subject: string): void;
  /** The user of a request's bearer token, if it belongs to one. */
  bearerUser(request: Request): FakeUser | undefined;
  /** An unsigned-looking JWT (header.payload.signature) with the given claims. */
  idToken(claims: Record<string, unknown>): string;
  authorizationRequests(): URL[];
};

/** base64url(SHA-256(text)): the S256 code challenge of a verifier (RFC 7636 §4.2). */
function sha256Base64Url(text: string): string {
  return createHash("sha256").update(text).digest("base64url");
}

function encodeJson(value: unknown): string {
  const bytes = new TextEncoder().encode(JSON.stringify(value));
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_")
    .replace(/=+$/, "");
}

/** Creates the consent server over a provider's token store. */
export function createConsentServer(tokens: TokenStore, refreshPrefix: string): ConsentServer {
  const users = new Map<string, FakeUser>();
  const owners = new Map<string, string>();
  const codes = new Map<string, IssuedCode>();
  const visits: URL[] = [];
  let consenting: string | null | undefined;

  function redirect(target: string, params: Record<string, string | null>): Response {
    const url = new URL(target);
    for (const [name, value] of Object.entries(params)) {
      if (value !== null) url.searchParams.set(name, value);
    }
    return new Response(null, { status: 302, headers: { location: url.toString() } });
  }

  const server: ConsentServer = {
    addUser(user) {
      users.set(user.subject, user);
      consenting ??= user.subject;
    },
    user: (subject) => users.get(subject),
    consentAs(subject) {
      consenting = subject;
    },
    authorize(url, clientId) {
      visits.push(url);
      const q = url.searchParams;
      const redirectUri = q.get("redirect_uri");
      if (clientId !== undefined && q.get("client_id") !== clientId) {
        return new Response("Error 401: invalid_client", { status: 401 });
      }
      if (!redirectUri || !URL.canParse(redirectUri)) {
        return new Response("Error 400: redirect_uri_mismatch", { status: 400 });
      }
      const state = q.get("state");
      if (q.get("response_type") !== "code") {
        return redirect(redirectUri, { error: "unsupported_response_type", state });
      }
      const challenge = q.get("code_challenge");
      if (!challenge || q.get("code_challenge_method") !== "S256") {
        return redirect(redirectUri, {
          error: "invalid_request",
          error_description: "code_challenge with method S256 is required",
          state,
        });
      }
      if (consenting === null || consenting === undefined) {
        return redirect(redirectUri, {
          error: "access_denied",
          error_description: "The user denied the request",
          state,
        });
      }
      const code = `4/${randomToken(30)}`;
      codes.set(code, {
        subject: consenting,
        clientId: q.get("client_id") ?? "",
        redirectUri,
        challenge,
        scope: q.get("scope") ?? "",
        used: false,
      });
      return redirect(redirectUri, { code, state, scope: q.get("scope") });
    },
    exchangeCode(form, clientId) {
      const issued = codes.get(form.get("code") ?? "");
      if (!issued || issued.used) {
        return { ok: false, error: "invalid_grant", description: "Malformed auth code." };
      }
      // A code is burnt by its first exchange, successful or not, as the real servers do.
      issued.used = true;
      if (form.get("redirect_uri") !== issued.redirectUri) {
        return { ok: false, error: "invalid_grant", description: "redirect_uri_mismatch" };
      }
      const verifier = form.get("code_verifier");
      if (!verifier || sha256Base64Url(verifier) !== issued.challenge) {
        return { ok: false, error: "invalid_grant", description: "Invalid code verifier." };
      }
      const user = users.get(issued.subject);
      if (!user) return { ok: false, error: "invalid_grant", description: "Unknown user." };
      return { ok: true, user, scope: issued.scope, clientId: clientId ?? issued.clientId };
    },
    issueTokens(user, ttl) {
      const refreshToken = `${refreshPrefix}${randomToken(32)}`;
      tokens.addRefreshToken(refreshToken);
      const accessToken = tokens.issueAccessToken(ttl);
      owners.set(refreshToken, user.subject);
      owners.set(accessToken, user.subject);
      return { refreshToken, accessToken };
    },
    ownerOf(token) {
      const subject = owners.get(token);
      return subject === undefined ? undefined : users.get(subject);
    },
    bind(token, subject) {
      owners.set(token, subject);
    },
    bearerUser(request) {
      const match = request.headers.get("authorization")?.match(/^Bearer\s+(\S+)\s*$/i);
      return match ? server.ownerOf(match[1]) : undefined;
    },
    idToken(claims) {
      return `${encodeJson({ alg: "RS256", kid: "fake", typ: "JWT" })}.${encodeJson(claims)}.${
        randomToken(64)
      }`;
    },
    authorizationRequests: () => [...visits],
  };
  return server;
}
