/** Graph's per-mailbox concurrency is per app: the claim counts an account's leases everywhere. */
import { insertProvider } from "../../src/storage/calendar_providers.ts";
import { insertAccount } from "../../src/storage/accounts.ts";
import { claimDueForProvider, insertConnection } from "../../src/storage/connections.ts";
import type { Sql } from "../../src/storage/client.ts";
import { createMigratedDatabase } from "../../testkit/scratch_database.ts";
import { assertEquals } from "../support/assert.ts";

async function mailbox(sql: Sql, providerId: string, email: string, calendars: number) {
  const account = await insertAccount(sql, {
    providerId,
    subject: email,
    email,
    refreshToken: "rt",
  });
  const ids: string[] = [];
  for (let i = 0; i < calendars; i++) {
    const { id } = await insertConnection(sql, {
      providerId,
      externalCalendarId: `${email}/calendar-${i}`,
      accountLabel: null,
      accountId: account.id,
    });
    ids.push(id);
  }
  return ids;
}

const claim = (sql: Sql, owner: string, limit: number, perAccount?: number) =>
  claimDueForProvider(sql, {
    kind: "microsoft",
    limit,
    leaseMs: 60_000,
    ownerPrefix: owner,
    allowlist: null,
    perAccount,
  });

Deno.test("a replica claims none of a mailbox's calendars while another holds its share", async () => {
  await using db = await createMigratedDatabase("mailbox_claim");
  const provider = await insertProvider(db.sql, {
    kind: "microsoft",
    name: "ms",
    allowlisted: true,
  });
  const busy = await mailbox(db.sql, provider.id, "busy@example.com", 4);
  const quiet = await mailbox(db.sql, provider.id, "quiet@example.com", 1);
  // Replica A holds two of the busy mailbox's calendars (its first two by due time).
  await db.sql`update external_calendar_connections set due_at = now() - interval '1 hour'
    where id = any(${busy.slice(0, 2)}::uuid[])`;
  const a = await claim(db.sql, "a", 2, 2);
  assertEquals(a.map((c) => c.id).sort(), busy.slice(0, 2).sort());

  const b = await claim(db.sql, "b", 16, 2);
  assertEquals(b.map((c) => c.id), quiet, "only the other mailbox's calendar");
  const unlimited = await claim(db.sql, "c", 16);
  assertEquals(unlimited.map((c) => c.id).sort(), busy.slice(2).sort());
});
