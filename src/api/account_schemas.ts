/** @module The admin API's account, calendar and connection shapes (zod, also the OpenAPI schemas). */
import { z } from "zod";
import type { ListedCalendar } from "../accounts/account_calendars.ts";
import type { AccountRow } from "../storage/accounts.ts";
import type { ConnectionStatusRow } from "../storage/connections.ts";

const Timestamp = z.string().meta({ format: "date-time" });
const iso = (value: Date | null) => (value === null ? null : value.toISOString());

/** A connected account; its refresh token is never part of any answer. */
export const Account = z.object({
  id: z.uuid(),
  provider_id: z.uuid(),
  provider_name: z.string(),
  provider_kind: z.enum(["google", "microsoft"]),
  subject: z.string().nullable().meta({
    description: "Google `sub`; Microsoft `tid/oid`. Null for an account moved from v1.",
  }),
  email: z.string().nullable(),
  label: z.string().nullable(),
  scopes: z.array(z.string()),
  status: z.enum(["active", "reauth_required", "revoked"]),
  connections: z.number().int(),
  last_refreshed_at: Timestamp.nullable(),
  created_at: Timestamp,
  updated_at: Timestamp,
}).meta({ id: "Account" });

/** The API view of an account row. */
export function toAccount(row: AccountRow): z.infer<typeof Account> {
  return {
    id: row.id,
    provider_id: row.provider_id,
    provider_name: row.provider_name,
    provider_kind: row.provider_kind,
    subject: row.subject,
    email: row.email,
    label: row.label,
    scopes: row.scopes,
    status: row.status,
    connections: row.connections,
    last_refreshed_at: iso(row.last_refreshed_at),
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
}

/** One calendar an account can see. */
export const Calendar = z.object({
  id: z.string(),
  name: z.string(),
  primary: z.boolean(),
  access_role: z.string(),
  connected: z.boolean(),
}).meta({ id: "Calendar" });

/** The API view of a discovered calendar. */
export function toCalendar(calendar: ListedCalendar): z.infer<typeof Calendar> {
  return {
    id: calendar.id,
    name: calendar.name,
    primary: calendar.primary,
    access_role: calendar.accessRole,
    connected: calendar.connected,
  };
}

/** A connection with the drill's state columns. */
export const Connection = z.object({
  id: z.uuid(),
  provider_id: z.uuid(),
  account_id: z.uuid().nullable(),
  external_calendar_id: z.string(),
  status: z.string(),
  error_count: z.number().int(),
  last_error: z.record(z.string(), z.unknown()).nullable(),
  backoff_until: Timestamp.nullable(),
  sync_needed: z.boolean(),
  last_synced_at: Timestamp.nullable(),
  last_success_at: Timestamp.nullable(),
  held_deletions: z.number().int(),
}).meta({ id: "Connection" });

/** The API view of a connection row. */
export function toConnection(row: ConnectionStatusRow): z.infer<typeof Connection> {
  return {
    id: row.id,
    provider_id: row.provider_id,
    account_id: row.account_id,
    external_calendar_id: row.external_calendar_id,
    status: row.status,
    error_count: row.error_count,
    last_error: (row.last_error ?? null) as Record<string, unknown> | null,
    backoff_until: iso(row.backoff_until),
    sync_needed: row.sync_needed,
    last_synced_at: iso(row.last_synced_at),
    last_success_at: iso(row.last_success_at),
    held_deletions: row.held_deletions,
  };
}

/** `{id}` of a resource path. */
export const IdPath = z.object({ id: z.uuid() });

/** Cursors of id-ordered listings: the last row's id. */
export const IdCursor = z.object({ after: z.uuid() });
