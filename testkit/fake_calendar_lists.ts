/** @module Paging of the fake providers' calendar lists (Google calendarList, Graph /me/calendars). */
import { decodeOpaque, encodeOpaque } from "./fake_tokens.ts";

/** One page of `items` from the opaque `token` (null: the first page); null for a bad token. */
export function calendarListPage<T>(
  items: T[],
  token: string | null,
  size: number,
): { items: T[]; next: string | null } | null {
  let offset = 0;
  if (token !== null) {
    const decoded = decodeOpaque("cl", token) as { offset?: unknown } | undefined;
    if (typeof decoded?.offset !== "number") return null;
    offset = decoded.offset;
  }
  const end = offset + Math.max(1, size);
  return {
    items: items.slice(offset, end),
    next: end < items.length ? encodeOpaque("cl", { offset: end }) : null,
  };
}
