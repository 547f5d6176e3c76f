/**
 * @module Standard Webhooks signing: `whsec_` secrets, and `webhook-signature: v1,<base64>` =
 * HMAC-SHA256 over `${id}.${timestamp}.${body}` with the secret's base64-decoded bytes.
 */

const PREFIX = "whsec_";

/** A new secret in the specification's form: `whsec_` + base64 of 24 random bytes. */
export function generateSecret(): string {
  return PREFIX + toBase64(crypto.getRandomValues(new Uint8Array(24)));
}

/** True when `secret` is `whsec_` + base64 of 24 to 64 bytes. */
export function isValidSecret(secret: string): boolean {
  if (!secret.startsWith(PREFIX)) return false;
  try {
    const bytes = fromBase64(secret.slice(PREFIX.length));
    return bytes.length >= 24 && bytes.length <= 64;
  } catch {
    return false;
  }
}

/** The v1 signature of one message attempt with one secret. */
export async function signatureOf(
  secret: string,
  message: { id: string; timestamp: number; body: string },
): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    fromBase64(secret.slice(PREFIX.length)),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const signed = new TextEncoder().encode(`${message.id}.${message.timestamp}.${message.body}`);
  return `v1,${toBase64(new Uint8Array(await crypto.subtle.sign("HMAC", key, signed)))}`;
}

/**
 * The three Standard Webhooks headers. With two secrets (a rotation) the signature header lists
 * both, space-separated, so receivers holding either one verify the message.
 */
export async function signedHeaders(
  secrets: readonly string[],
  message: { id: string; timestamp: number; body: string },
): Promise<Record<string, string>> {
  const signatures = await Promise.all(secrets.map((secret) => signatureOf(secret, message)));
  return {
    "webhook-id": message.id,
    "webhook-timestamp": String(message.timestamp),
    "webhook-signature": signatures.join(" "),
  };
}

function toBase64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}

function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(atob(text), (char) => char.charCodeAt(0));
}
