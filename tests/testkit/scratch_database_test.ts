import postgres from "postgres";
import { assert, assertEquals, assertRejects } from "../support/assert.ts";
import { createTestDatabase } from "../../testkit/scratch_database.ts";

async function currentDatabase(url: string): Promise<string> {
  const sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 5 });
  try {
    const [row] = await sql<{ name: string }[]>`select current_database() as name`;
    return row.name;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

Deno.test("createTestDatabase() gives each call its own database, which drop() removes", async () => {
  const first = await createTestDatabase("spec");
  const second = await createTestDatabase("spec");
  try {
    assert(first.name !== second.name, `both calls returned ${first.name}`);
    assert(/^calsync_test_spec_[0-9a-f]{12}$/.test(first.name), `unexpected name ${first.name}`);
    assertEquals(await currentDatabase(first.url), first.name);
    assertEquals(await currentDatabase(second.url), second.name);
  } finally {
    await first.drop();
    await second.drop();
  }
  for (const dropped of [first, second]) {
    const error = await assertRejects(() => currentDatabase(dropped.url));
    assertEquals((error as { code?: string }).code, "3D000", "expected 'database does not exist'");
  }
  // Dropping again is harmless, so cleanup in finally blocks may run twice.
  await first.drop();
});

Deno.test("createTestDatabase() rejects a prefix that is not letters, digits and underscores", async () => {
  await assertRejects(
    () => createTestDatabase("no-dashes"),
    Error,
    "Cannot create test database: 'prefix' must be 1-30 letters, digits or underscores",
  );
});
