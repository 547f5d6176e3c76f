/** @module Random secrets for Google channel tokens and Graph clientState values. */

/** 32 random bytes as base64url (43 characters): within Google's 256 and Graph's 128 limits. */
export function generateChannelSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_")
    .replace(/=+$/, "");
}
