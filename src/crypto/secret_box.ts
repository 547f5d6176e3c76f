/** @module Encrypts secrets at rest (refresh tokens, channel tokens, Graph clientStates) with AES-256-GCM (WebCrypto), with key rotation. */
import { SecretBoxError } from "../core/errors.ts";

/** Seals and opens stored secrets; values stored before a key was configured open as they are. */
export type SecretBox = {
  /** True when a key is configured (new secrets are encrypted). */
  readonly encrypting: boolean;
  seal(plaintext: string): Promise<string>;
  open(stored: string): Promise<string>;
  /** True when `stored` is not sealed with the current key (plaintext or an older key). */
  needsReseal(stored: string): Promise<boolean>;
};

/** A stored value could not be opened (unknown key, or tampered/corrupt ciphertext). */
export { SecretBoxError };

const PREFIX = "enc:v1:";
// Binds ciphertexts to their purpose, so a sealed value cannot be replayed as another kind.
const AAD = new TextEncoder().encode("calsync/refresh-token/v1");

function toBase64Url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_")
    .replace(/=+$/, "");
}

function fromBase64Url(text: string): Uint8Array {
  const base64 = text.replaceAll("-", "+").replaceAll("_", "/");
  const binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

/**
 * Parses a key list: comma-separated base64 (or base64url) 32-byte keys, the current one first.
 * Returns the raw keys or a problem description (never including key material).
 */
export function parseKeyList(text: string): Uint8Array[] | string {
  const parts = text.split(",").map((part) => part.trim()).filter(Boolean);
  if (parts.length === 0) return "must list at least one key";
  const keys: Uint8Array[] = [];
  for (const [index, part] of parts.entries()) {
    let bytes: Uint8Array;
    try {
      bytes = fromBase64Url(part);
    } catch {
      return `key ${index + 1} is not base64`;
    }
    if (bytes.length !== 32) {
      return `key ${
        index + 1
      } must be 32 bytes (base64 of 32 random bytes, e.g. \`openssl rand -base64 32\`), got ${bytes.length}`;
    }
    keys.push(bytes);
  }
  return keys;
}

async function keyId(raw: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", raw as BufferSource));
  return Array.from(digest.slice(0, 4), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Creates a box over `keys` (current first); with no keys it stores plaintext. */
export function createSecretBox(keys: readonly Uint8Array[]): SecretBox {
  const imported = Promise.all(keys.map(async (raw) => ({
    id: await keyId(raw),
    key: await crypto.subtle.importKey("raw", raw as BufferSource, "AES-GCM", false, [
      "encrypt",
      "decrypt",
    ]),
  })));
  return {
    encrypting: keys.length > 0,
    async seal(plaintext) {
      const list = await imported;
      if (list.length === 0) return plaintext;
      const iv = crypto.getRandomValues(new Uint8Array(12));
      const sealed = new Uint8Array(
        await crypto.subtle.encrypt(
          { name: "AES-GCM", iv, additionalData: AAD },
          list[0].key,
          new TextEncoder().encode(plaintext),
        ),
      );
      return `${PREFIX}${list[0].id}:${toBase64Url(iv)}:${toBase64Url(sealed)}`;
    },
    async open(stored) {
      // Awaited first so a plaintext answer never leaves the key import running behind it.
      const list = await imported;
      if (!stored.startsWith(PREFIX)) return stored;
      const [id, iv, data] = stored.slice(PREFIX.length).split(":");
      const entry = list.find((k) => k.id === id);
      if (!entry) {
        throw new SecretBoxError(
          `Cannot decrypt a stored secret: it was sealed with key ${id}, which is not in ` +
            "CALSYNC_ENCRYPTION_KEY",
        );
      }
      try {
        const plain = await crypto.subtle.decrypt(
          { name: "AES-GCM", iv: fromBase64Url(iv ?? "") as BufferSource, additionalData: AAD },
          entry.key,
          fromBase64Url(data ?? "") as BufferSource,
        );
        return new TextDecoder().decode(plain);
      } catch (error) {
        throw new SecretBoxError(
          `Cannot decrypt a stored secret sealed with key ${id}: it is corrupt or was altered`,
          { cause: error },
        );
      }
    },
    async needsReseal(stored) {
      const list = await imported;
      if (list.length === 0) return false;
      return !stored.startsWith(`${PREFIX}${list[0].id}:`);
    },
  };
}
