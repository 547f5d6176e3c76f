import { assert, assertEquals } from "../support/assert.ts";
import { startFakeGoogle } from "../../testkit/fake_google.ts";
import { createMigratedDatabase } from "../../testkit/scratch_database.ts";
import { claimOne, createHarness } from "../support/sync_harness.ts";
import { insertProvider } from "../../src/storage/calendar_providers.ts";
import { insertAccount } from "../../src/storage/accounts.ts";
import { insertConnection } from "../../src/storage/connections.ts";
import { listEvents } from "../../src/storage/calendar_events.ts";
import { runSync } from "../../src/sync/run_sync.ts";

async function setup() {
  const db = await createMigratedDatabase("account_tokens");
  const google = startFakeGoogle();
  const harness = createHarness(db.sql, {
    GOOGLE_API_BASE_URL: google.baseUrl,
    GOOGLE_TOKEN_URL: google.tokenUrl,
  });
  const provider = await insertProvider(db.sql, {
    kind: "google",
    name: "google",
    allowlisted: true,
  });
  return {
    db,
    google,
    harness,
    providerId: provider.id,
    async [Symbol.asyncDispose]() {
      await google.close();
      await db.close();
    },
  };
}

Deno.test("two users' primary calendars on one provider sync side by side into their own rows", async () => {
  await using t = await setup();
  const users = ["alice", "bob"].map((name) =>
    t.google.addUser({ subject: `sub-${name}`, email: `${name}@example.com` })
  );
  const ids: string[] = [];
  // Each user's refresh token, as a consent would hand it over (the connect flow has its own
  // tests); both connections name the calendar "primary", which each token resolves to its own.
  for (const user of users) {
    t.google.putEvent(user.email, { summary: `${user.email}'s meeting` });
    const token = t.google.issueRefreshTokenFor(user.subject);
    const account = await insertAccount(t.db.sql, {
      providerId: t.providerId,
      subject: user.subject,
      email: user.email,
      refreshToken: token,
    });
    const { id } = await insertConnection(t.db.sql, {
      providerId: t.providerId,
      accountId: account.id,
      externalCalendarId: "primary",
      accountLabel: null,
    });
    ids.push(id);
  }
  for (const id of ids) assertEquals((await t.harness.syncOnce(id))?.outcome, "success");
  const titles = await Promise.all(
    ids.map(async (id) => (await listEvents(t.db.sql, id)).map((row) => row.title)),
  );
  assertEquals(titles, [["alice@example.com's meeting"], ["bob@example.com's meeting"]]);
});

Deno.test("one account with three calendars refreshes once, and invalid_grant marks all three", async () => {
  await using t = await setup();
  const user = t.google.addUser({
    subject: "sub-carol",
    email: "carol@example.com",
    calendars: ["carol@example.com", "team", "holidays"].map((id, i) => ({
      id,
      name: id,
      primary: i === 0,
    })),
  });
  const token = t.google.issueRefreshTokenFor(user.subject);
  const account = await insertAccount(t.db.sql, {
    providerId: t.providerId,
    subject: user.subject,
    email: user.email,
    refreshToken: token,
  });
  const ids: string[] = [];
  for (const calendar of user.calendars) {
    ids.push(
      (await insertConnection(t.db.sql, {
        providerId: t.providerId,
        accountId: account.id,
        externalCalendarId: calendar.id,
        accountLabel: null,
      })).id,
    );
  }
  const before = t.google.tokenRequests();
  for (const id of ids) assertEquals((await t.harness.syncOnce(id))?.outcome, "success");
  assertEquals(t.google.tokenRequests() - before, 1, "one refresh per access-token lifetime");

  // The token is revoked: the next refresh answers invalid_grant, for the whole account.
  t.google.revokeRefreshToken(token);
  t.google.expireAccessTokens();
  t.harness.deps.tokens.invalidate(ids[0]);
  await t.db.sql`update external_calendar_connections set sync_needed = true, due_at = now()`;
  const claimed = await claimOne(t.db.sql, ids[0]);
  assertEquals(
    (await runSync(t.harness.deps, claimed!, new AbortController().signal)).outcome,
    "failure",
  );
  const rows = await t.db.sql<{ status: string }[]>`
    select status from external_calendar_connections where account_id = ${account.id}`;
  assertEquals(rows.map((row) => row.status), Array(3).fill("reauth_required"));
  const [stored] = await t.db.sql<{ status: string }[]>`
    select status from calendar_accounts where id = ${account.id}`;
  assertEquals(stored.status, "reauth_required");
  // None of the three is claimed again, so the dead token is not tried once per calendar.
  for (const id of ids) assert((await claimOne(t.db.sql, id)) === null, `${id} was claimable`);
});

Deno.test("an account moved from v1 learns its subject from the id token of its next refresh", async () => {
  await using db = await createMigratedDatabase("account_identity");
  await using google = startFakeGoogle({ clientId: "cid", clientSecret: "cs" });
  const harness = createHarness(db.sql, {
    GOOGLE_API_BASE_URL: google.baseUrl,
    GOOGLE_TOKEN_URL: google.tokenUrl,
    GOOGLE_AUTH_URL: google.authUrl,
    GOOGLE_CLIENT_ID: "cid",
    GOOGLE_CLIENT_SECRET: "cs",
  });
  const provider = await insertProvider(db.sql, { kind: "google", name: "g", allowlisted: true });
  const user = google.addUser({ subject: "9001", email: "erin@example.com" });
  // What migration 007 leaves: an account with the v1 token and no subject.
  const { id, accountId } = await insertConnection(db.sql, {
    providerId: provider.id,
    externalCalendarId: user.email,
    refreshToken: google.issueRefreshTokenFor(user.subject),
    accountLabel: null,
  });
  assertEquals((await harness.syncOnce(id))?.outcome, "success");
  const [account] = await db
    .sql`select subject, email from calendar_accounts where id = ${accountId}`;
  assertEquals([account.subject, account.email], ["9001", "erin@example.com"]);
});
