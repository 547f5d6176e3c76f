/** @module Removes secrets from log fields before they are written anywhere. */

const SECRET_KEY =
  /(token|secret|password|passwd|authorization|clientstate|client_state|credential|cookie|api_?key|encryption|refresh)/i;
// The user may be empty (`postgres://:pw@host`) and the password may hold `@`: mask up to the
// last `@` of the URL.
const URL_PASSWORD = /(\b[a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)[^\s]*@/gi;
const BEARER = /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/gi;
// Names that are secrets wherever `name=` appears (a query, a form body, a DSN, free text).
const NAMED_SECRET =
  /(\b(?:access_token|refresh_token|id_token|client_secret|client_assertion|password|sslpassword|passwd|clientState|client_state|api_?key)=)[^&\s"']+/gi;
// Names too generic to mask outside a query string.
const QUERY_SECRET = /([?&](?:code|token|validationToken)=)[^&\s"']+/gi;
// `"refresh_token":"..."` inside free text (a provider's JSON answer quoted in a message).
const JSON_SECRET =
  /("(?:access_token|refresh_token|id_token|client_secret|password|clientState|client_state|token|secret)"\s*:\s*")(?:[^"\\]|\\.)*"/gi;

/** The text that replaces every redacted value. */
export const REDACTED = "[REDACTED]";

/** Masks passwords in URLs, bearer credentials and secret query parameters inside free text. */
export function redactText(text: string): string {
  return text
    .replace(URL_PASSWORD, `$1${REDACTED}@`)
    .replace(BEARER, `$1 ${REDACTED}`)
    .replace(NAMED_SECRET, `$1${REDACTED}`)
    .replace(QUERY_SECRET, `$1${REDACTED}`)
    .replace(JSON_SECRET, `$1${REDACTED}"`);
}

/** Returns a JSON-safe deep copy of `value` with secret-named keys and secret-looking text masked. */
export function redact(value: unknown, depth = 0): unknown {
  if (depth > 8) return "[TRUNCATED]";
  if (typeof value === "string") return redactText(value);
  if (typeof value === "bigint") return value.toString();
  if (value === null || typeof value !== "object") return value;
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Error) return redactError(value, depth);
  if (Array.isArray(value)) return value.map((item) => redact(item, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    out[key] = SECRET_KEY.test(key) && item !== null && item !== undefined
      ? REDACTED
      : redact(item, depth + 1);
  }
  return out;
}

function redactError(error: Error, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = { name: error.name, message: redactText(error.message) };
  const code = (error as { code?: unknown }).code;
  if (code !== undefined) out.code = redact(code, depth + 1);
  if (error.cause !== undefined) out.cause = redact(error.cause, depth + 1);
  return out;
}
