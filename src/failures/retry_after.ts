/** @module Parses the HTTP `Retry-After` header. */

/**
 * Returns the delay a `Retry-After` header asks for, in milliseconds, or null when absent or
 * unreadable. Graph sends whole or fractional seconds; HTTP also allows an HTTP date.
 */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | null {
  if (value === null) return null;
  const text = value.trim();
  if (text === "") return null;
  if (/^\d+(\.\d+)?$/.test(text)) return Math.ceil(Number(text) * 1000);
  const date = Date.parse(text);
  if (Number.isNaN(date)) return null;
  return Math.max(0, date - now);
}
