/** @module Checks a new subscriber's input the same way for the CLI and the admin API. */
import { isValidSecret } from "./webhook_signature.ts";

/** What is wrong with a subscriber's URL or secret, or null when both are fine. */
export function subscriberInputProblem(input: { url: string; secret?: string }): string | null {
  let url: URL;
  try {
    url = new URL(input.url);
  } catch {
    return `url must be an absolute http(s) URL, got "${input.url}"`;
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    return `url must be http or https, got "${url.protocol}"`;
  }
  if (input.secret !== undefined && !isValidSecret(input.secret)) {
    return "secret must be whsec_ followed by base64 of 24 to 64 bytes";
  }
  return null;
}

/** How long the previous secret keeps signing after a rotation. */
export const ROTATION_OVERLAP_MS = 24 * 3_600_000;
