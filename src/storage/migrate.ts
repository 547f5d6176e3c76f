/** @module Applies numbered SQL migrations, each in its own transaction, under an advisory lock. */
import type { Sql } from "./client.ts";
import { inTransaction } from "./transaction.ts";
import { sha256Hex } from "../crypto/sha256.ts";
import { MigrationError } from "../core/errors.ts";

/** One migration file. */
export type Migration = { version: number; name: string; sql: string; checksum: string };

/** What a migration run did. */
export type MigrationResult = { applied: string[]; alreadyApplied: number };

/** A migration problem that must stop startup (for example an edited, already-applied file). */
export { MigrationError };

// Arbitrary constant shared by every calsync process so concurrent migrators serialise.
const MIGRATION_LOCK_KEY = 7_215_334_001;

/** The folder holding calsync's migrations (also inside a compiled binary, via `--include`). */
export const MIGRATIONS_DIR = new URL("../../migrations/", import.meta.url);

/** Reads `NNN_name.sql` files from a folder, sorted by number; rejects duplicates and gaps in naming. */
export async function readMigrations(dir: URL = MIGRATIONS_DIR): Promise<Migration[]> {
  const migrations: Migration[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.isFile || !entry.name.endsWith(".sql")) continue;
    const match = /^(\d+)_([a-z0-9_]+)\.sql$/.exec(entry.name);
    if (!match) {
      throw new MigrationError(
        `Cannot read migration "${entry.name}": names must look like 001_description.sql`,
      );
    }
    const text = await Deno.readTextFile(new URL(entry.name, dir));
    migrations.push({
      version: Number(match[1]),
      name: entry.name,
      sql: text,
      checksum: await sha256Hex(text),
    });
  }
  migrations.sort((a, b) => a.version - b.version);
  for (let i = 1; i < migrations.length; i++) {
    if (migrations[i].version === migrations[i - 1].version) {
      throw new MigrationError(
        `Cannot order migrations: "${migrations[i - 1].name}" and "${
          migrations[i].name
        }" share a number`,
      );
    }
  }
  return migrations;
}

/** Applies every pending migration; a changed, already-applied file stops with MigrationError. */
export async function migrate(sql: Sql, migrations?: Migration[]): Promise<MigrationResult> {
  const files = migrations ?? await readMigrations();
  await inTransaction(sql, async (tx) => {
    await tx`select pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`;
    await tx`
      create table if not exists calsync_migrations (
        version integer primary key,
        name text not null,
        checksum text not null,
        applied_at timestamptz not null default now()
      )`;
  });
  const result: MigrationResult = { applied: [], alreadyApplied: 0 };
  for (const migration of files) {
    // Each migration runs in its own transaction holding the lock, so two replicas starting
    // together apply it once and the second sees it recorded.
    await inTransaction(sql, async (tx) => {
      await tx`select pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`;
      const [row] = await tx<{ checksum: string; name: string }[]>`
        select checksum, name from calsync_migrations where version = ${migration.version}`;
      if (row) {
        if (row.checksum !== migration.checksum) {
          throw new MigrationError(
            `Migration "${migration.name}" was changed after it was applied (recorded checksum ${
              row.checksum.slice(0, 12)
            }, file ${
              migration.checksum.slice(0, 12)
            }); add a new migration instead of editing an applied one`,
          );
        }
        result.alreadyApplied++;
        return;
      }
      try {
        await tx.unsafe(migration.sql);
      } catch (error) {
        throw new MigrationError(
          `Cannot apply migration "${migration.name}": ${(error as Error).message}`,
          { cause: error },
        );
      }
      await tx`
        insert into calsync_migrations (version, name, checksum)
        values (${migration.version}, ${migration.name}, ${migration.checksum})`;
      result.applied.push(migration.name);
    });
  }
  return result;
}

/** Reports whether every migration file has been applied (used by `/readyz`). */
export async function pendingMigrations(sql: Sql, migrations: Migration[]): Promise<string[]> {
  const exists = await sql<{ present: boolean }[]>`
    select to_regclass('calsync_migrations') is not null as present`;
  if (!exists[0].present) return migrations.map((m) => m.name);
  const rows = await sql<{ version: number }[]>`select version from calsync_migrations`;
  const applied = new Set(rows.map((row) => row.version));
  return migrations.filter((m) => !applied.has(m.version)).map((m) => m.name);
}
