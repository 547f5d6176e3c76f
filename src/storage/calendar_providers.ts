/** @module SQL for `calendar_providers`. */
import type { Sql } from "./client.ts";

import type { ProviderKind } from "../core/provider_kind.ts";

/** A row of `calendar_providers`. */
export type ProviderRow = {
  id: string;
  kind: ProviderKind;
  name: string;
  allowlisted: boolean;
  created_at: Date;
};

/** Inserts a provider; a duplicate name raises the unique violation (code 23505). */
export async function insertProvider(
  sql: Sql,
  input: { kind: ProviderKind; name: string; allowlisted: boolean },
): Promise<ProviderRow> {
  const [row] = await sql<ProviderRow[]>`
    insert into calendar_providers (kind, name, allowlisted)
    values (${input.kind}, ${input.name}, ${input.allowlisted})
    returning id, kind, name, allowlisted, created_at`;
  return row;
}

/** Lists every provider, oldest first. */
export async function listProviders(sql: Sql): Promise<ProviderRow[]> {
  return await sql<ProviderRow[]>`
    select id, kind, name, allowlisted, created_at from calendar_providers order by created_at, name`;
}

/** Finds a provider by id or by name. */
export async function findProvider(sql: Sql, nameOrId: string): Promise<ProviderRow | null> {
  const isUuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(nameOrId);
  const [row] = isUuid
    ? await sql<ProviderRow[]>`
        select id, kind, name, allowlisted, created_at from calendar_providers
        where id = ${nameOrId} or name = ${nameOrId}`
    : await sql<ProviderRow[]>`
        select id, kind, name, allowlisted, created_at from calendar_providers
        where name = ${nameOrId}`;
  return row ?? null;
}

/** Sets whether a provider's connections may sync. */
export async function setProviderAllowlisted(
  sql: Sql,
  id: string,
  allowlisted: boolean,
): Promise<boolean> {
  const rows = await sql`
    update calendar_providers set allowlisted = ${allowlisted} where id = ${id} returning id`;
  return rows.length === 1;
}
