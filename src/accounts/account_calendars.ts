/** @module Connects calendars of an account: one by id, its primary one, or all it can see. */
import { ConnectError } from "../core/errors.ts";
import { findAccount } from "../storage/accounts.ts";
import { connectedCalendarIds, insertAccountConnections } from "../storage/connections.ts";
import { listAccountCalendars } from "./account_access.ts";
import type { DiscoveredCalendar } from "./calendar_discovery.ts";
import { pickCalendars } from "./calendar_discovery.ts";
import type { ConnectDeps } from "./connect_deps.ts";

/** A calendar as discovery lists it, and whether the account already has a connection to it. */
export type ListedCalendar = DiscoveredCalendar & { connected: boolean };

/** The account's calendars with their connected flag; null when there is no such account. */
export async function accountCalendars(
  deps: ConnectDeps,
  accountId: string,
  signal: AbortSignal,
): Promise<ListedCalendar[] | null> {
  const calendars = await listAccountCalendars(deps, accountId, signal);
  if (calendars === null) return null;
  const connected = await connectedCalendarIds(deps.sql, accountId);
  return calendars.map((calendar) => ({ ...calendar, connected: connected.has(calendar.id) }));
}

/**
 * Connects `calendar` (an id, `primary` or `all`) of the account. `primary` stores the real id
 * discovery resolves it to, so two users' primary calendars never share an id. Calendars already
 * connected are skipped; returns the new connections (empty: nothing new).
 */
export async function connectAccountCalendars(
  deps: ConnectDeps,
  accountId: string,
  calendar: string,
  signal: AbortSignal,
): Promise<{ id: string; external_calendar_id: string }[] | null> {
  const account = await findAccount(deps.sql, accountId);
  if (!account) return null;
  let ids = [calendar];
  if (calendar === "primary" || calendar === "all") {
    const listed = await listAccountCalendars(deps, accountId, signal);
    ids = pickCalendars(listed ?? [], calendar).map((entry) => entry.id);
    if (ids.length === 0) {
      throw new ConnectError(
        "discovery_failed",
        `Account ${accountId} lists no ${calendar} calendar`,
      );
    }
  }
  return await insertAccountConnections(deps.sql, {
    providerId: account.provider_id,
    accountId,
    calendarIds: ids,
    label: account.email ?? account.label,
  });
}
