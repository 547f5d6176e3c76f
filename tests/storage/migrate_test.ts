import { assert, assertEquals, assertRejects } from "../support/assert.ts";
import { openSql } from "../../src/storage/client.ts";
import {
  migrate,
  type Migration,
  MigrationError,
  readMigrations,
} from "../../src/storage/migrate.ts";
import { createTestDatabase } from "../../testkit/scratch_database.ts";

async function withDatabase(
  fn: (sql: ReturnType<typeof openSql>, url: string) => Promise<void>,
) {
  const database = await createTestDatabase("migrations");
  const sql = openSql(database.url, { max: 4 });
  try {
    await fn(sql, database.url);
  } finally {
    await sql.end({ timeout: 1 });
    await database.drop();
  }
}

Deno.test("migrate() applies every migration to a fresh database, then nothing on a re-run", async () => {
  await withDatabase(async (sql) => {
    const files = await readMigrations();
    const first = await migrate(sql);
    assertEquals(first.applied, files.map((m) => m.name));
    const second = await migrate(sql);
    assertEquals(second, { applied: [], alreadyApplied: files.length, notes: [] });
    const tables = await sql<{ name: string }[]>`
      select table_name as name from information_schema.tables where table_schema = 'public'`;
    const names = new Set(tables.map((t) => t.name));
    for (
      const table of [
        "calendar_providers",
        "external_calendar_connections",
        "external_calendar_events",
        "webhook_dedupe_keys",
      ]
    ) assert(names.has(table), `missing ${table}`);
  });
});

Deno.test("migrate() refuses to start when an applied migration file was changed", async () => {
  await withDatabase(async (sql) => {
    const files = await readMigrations();
    await migrate(sql, files);
    const edited: Migration[] = files.map((m, i) =>
      i === 0 ? { ...m, sql: m.sql + "\n-- edited", checksum: "0".repeat(64) } : m
    );
    await assertRejects(
      () => migrate(sql, edited),
      MigrationError,
      "was changed after it was applied",
    );
  });
});

Deno.test("a database that applied migration 005's first text accepts its revised, batched text", async () => {
  await withDatabase(async (sql) => {
    const files = await readMigrations();
    const revised = files.find((m) => m.version === 5)!;
    assertEquals(revised.replaces, [
      "9f5f88b6100d02b891d9a54a2b8c57ac04ecbf6fb308dad52641735e8abb35e8",
    ]);
    await migrate(sql, files);
    // As recorded by a daemon that applied the text released before the batching.
    await sql`update calsync_migrations set checksum = ${revised.replaces![0]} where version = 5`;
    const again = await migrate(sql, files);
    assertEquals([again.applied, again.alreadyApplied], [[], files.length]);
    // Any other recorded text still stops the start.
    await sql`update calsync_migrations set checksum = ${"1".repeat(64)} where version = 5`;
    await assertRejects(
      () => migrate(sql, files),
      MigrationError,
      "was changed after it was applied",
    );
  });
});

Deno.test("migrate() rolls back a failing migration and records nothing of it", async () => {
  await withDatabase(async (sql) => {
    const files = await readMigrations();
    const broken: Migration = {
      version: 999,
      name: "999_broken.sql",
      sql: "create table half_done (id int); select 1/0;",
      checksum: "f".repeat(64),
    };
    await assertRejects(() => migrate(sql, [...files, broken]), MigrationError, "999_broken.sql");
    const [row] = await sql`select to_regclass('half_done') is null as absent`;
    assert(row.absent, "the failed migration's table survived");
    const [recorded] =
      await sql`select count(*)::int as n from calsync_migrations where version = 999`;
    assertEquals(recorded.n, 0);
  });
});

Deno.test("two migrators racing on one database apply each migration exactly once", async () => {
  await withDatabase(async (sql, url) => {
    // Separate pools, as separate replicas would have.
    const replicas = [openSql(url, { max: 1 }), openSql(url, { max: 1 }), openSql(url, { max: 1 })];
    const results = await Promise.all(replicas.map((replica) => migrate(replica)));
    await Promise.all(replicas.map((replica) => replica.end({ timeout: 1 })));
    const applied = results.flatMap((r) => r.applied);
    const files = await readMigrations();
    assertEquals(applied.sort(), files.map((m) => m.name).sort());
    const [count] = await sql`select count(*)::int as n from calsync_migrations`;
    assertEquals(count.n, files.length);
  });
});
