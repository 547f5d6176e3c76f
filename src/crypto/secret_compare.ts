/** @module Constant-time comparison of secrets (webhook tokens, the admin token). */

const encoder = new TextEncoder();

/**
 * Compares a stored secret with a presented one in time that depends only on the stored
 * secret's length, so response timing reveals nothing about how much of a guess was right.
 */
export function secretsEqual(expected: string, presented: string): boolean {
  const a = encoder.encode(expected);
  const b = encoder.encode(presented);
  let difference = a.length ^ b.length;
  for (let i = 0; i < a.length; i++) {
    // Reading b at i modulo its length keeps the loop the same for any presented length.
    difference |= a[i] ^ (b.length === 0 ? 0 : b[i % b.length]);
  }
  return difference === 0 && b.length > 0;
}
