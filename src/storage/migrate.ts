/** @module Applies numbered SQL migrations, each in its own transaction, under an advisory lock. */
import type { Sql } from "./client.ts";
import { inTransaction } from "./transaction.ts";
import { sha256Hex } from "../crypto/sha256.ts";
import { MigrationError } from "../core/errors.ts";
import { logger } from "../log/setup.ts";

/**
 * One migration file. `replaces` are checksums of earlier texts of it that a database may have
 * recorded (see REPLACES_DIRECTIVE).
 */
export type Migration = {
  version: number;
  name: string;
  sql: string;
  checksum: string;
  replaces?: readonly string[];
};

/** What a migration run did; `notes` are what applied migrations reported (`calsync_note`). */
export type MigrationResult = { applied: string[]; alreadyApplied: number; notes: string[] };

/**
 * A migration whose first line is this runs outside a transaction, one statement at a time
 * (statements end with `;` at the end of a line), so it can `create index concurrently`. Each
 * statement must be safe to run again: a migrator that dies half-way reruns the whole file.
 */
export const NO_TRANSACTION_DIRECTIVE = "-- calsync:no-transaction";

/**
 * `-- calsync:replaces <sha256>` in a migration's leading comments: the file was revised after
 * release (a statement made safe on a large table, with the same effect), and a database that
 * recorded that earlier checksum has it applied. Any other edit of an applied file still stops.
 */
export const REPLACES_DIRECTIVE = "-- calsync:replaces ";

const log = logger("storage");

const LOST_CONNECTION = new Set([
  "CONNECTION_CLOSED",
  "CONNECTION_DESTROYED",
  "ECONNRESET",
  "EPIPE",
]);

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
      replaces: replacedChecksums(text),
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
  const result: MigrationResult = { applied: [], alreadyApplied: 0, notes: [] };
  for (const migration of files) {
    if (migration.sql.startsWith(NO_TRANSACTION_DIRECTIVE)) {
      await applyOutsideTransaction(sql, migration, result);
      continue;
    }
    // Each migration runs in its own transaction holding the lock, so two replicas starting
    // together apply it once and the second sees it recorded.
    await inTransaction(sql, async (tx) => {
      await tx`select pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`;
      const [row] = await tx<{ checksum: string; name: string }[]>`
        select checksum, name from calsync_migrations where version = ${migration.version}`;
      if (row) {
        assertUnchanged(migration, row.checksum);
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

/**
 * Splits a no-transaction migration into statements, comments dropped. A statement ends with a
 * `;` at the end of a line outside dollar quotes, so a `do $$ ... $$` block (a batched backfill
 * that commits per batch) stays one statement.
 */
export function migrationStatements(text: string): string[] {
  const statements: string[] = [];
  let current: string[] = [];
  let quote: string | null = null;
  for (const line of text.split("\n")) {
    if (quote === null && line.trimStart().startsWith("--")) continue;
    current.push(line);
    for (const tag of line.match(/\$[A-Za-z_]*\$/g) ?? []) {
      if (quote === null) quote = tag;
      else if (tag === quote) quote = null;
    }
    if (quote === null && /;[ \t]*$/.test(line)) {
      statements.push(current.join("\n").trim().replace(/;[ \t]*$/, ""));
      current = [];
    }
  }
  statements.push(current.join("\n").trim());
  return statements.filter(Boolean);
}

async function checkRecorded(sql: Sql, migration: Migration): Promise<boolean> {
  const [row] = await sql<{ checksum: string }[]>`
    select checksum from calsync_migrations where version = ${migration.version}`;
  if (row) assertUnchanged(migration, row.checksum);
  return row !== undefined;
}

/** The checksums a migration's leading comment lines say it replaces. */
function replacedChecksums(text: string): string[] {
  const found: string[] = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith("--")) break;
    if (line.startsWith(REPLACES_DIRECTIVE)) {
      found.push(line.slice(REPLACES_DIRECTIVE.length).trim());
    }
  }
  return found;
}

/** An applied migration must be the file's text, or a text the file says it replaces. */
function assertUnchanged(migration: Migration, recorded: string): void {
  if (recorded === migration.checksum || migration.replaces?.includes(recorded)) return;
  throw new MigrationError(
    `Migration "${migration.name}" was changed after it was applied (recorded checksum ${
      recorded.slice(0, 12)
    }, file ${
      migration.checksum.slice(0, 12)
    }); add a new migration instead of editing an applied one`,
  );
}

/**
 * Takes the migration lock for a session. A blocking pg_advisory_lock would keep a snapshot open
 * while it waits, and `create index concurrently` in the holder waits for every older snapshot:
 * a deadlock. Trying in a loop holds none between tries.
 */
async function takeSessionLock(reserved: Sql): Promise<void> {
  for (;;) {
    const [row] = await reserved<{ ok: boolean }[]>`
      select pg_try_advisory_lock(${MIGRATION_LOCK_KEY}) as ok`;
    if (row.ok) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Applies a no-transaction migration on one reserved connection holding the session lock. */
async function applyOutsideTransaction(sql: Sql, migration: Migration, result: MigrationResult) {
  const reserved = await sql.reserve();
  let alive = true;
  try {
    await takeSessionLock(reserved);
    try {
      if (await checkRecorded(reserved as unknown as Sql, migration)) {
        result.alreadyApplied++;
        return;
      }
      const notes: string[] = [];
      for (const statement of migrationStatements(migration.sql)) {
        let rows: Record<string, unknown>[];
        try {
          rows = await reserved.unsafe(statement);
        } catch (error) {
          alive = !LOST_CONNECTION.has(String((error as { code?: unknown }).code ?? ""));
          throw new MigrationError(
            `Cannot apply migration "${migration.name}": ${(error as Error).message}`,
            { cause: error },
          );
        }
        for (const row of rows) {
          if (typeof row?.calsync_note === "string") notes.push(row.calsync_note);
        }
      }
      await reserved`
        insert into calsync_migrations (version, name, checksum)
        values (${migration.version}, ${migration.name}, ${migration.checksum})`;
      result.applied.push(migration.name);
      for (const note of notes) {
        result.notes.push(`${migration.name}: ${note}`);
        log.info("Migration {migration} applied: {note}", { migration: migration.name, note });
      }
    } finally {
      // On a dead socket postgres.js throws outside any promise (porsager/postgres#1208); the
      // server drops a session's locks when its connection goes, so there is nothing to undo.
      if (alive) await reserved`select pg_advisory_unlock(${MIGRATION_LOCK_KEY})`.catch(() => {});
    }
  } finally {
    reserved.release();
  }
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
