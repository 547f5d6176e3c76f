/** @module SHA-256 as lowercase hex (migration checksums, webhook dedupe keys). */

const encoder = new TextEncoder();

/** Returns the SHA-256 digest of `text` (UTF-8) as 64 lowercase hex characters. */
export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", encoder.encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}
