/**
 * @module Scratch PostgreSQL databases for tests, the bench and the drills: created with a random
 * name (optionally owned by a role of their own, optionally migrated) and dropped afterwards.
 */

import postgres from "postgres";
import { join } from "node:path";
import { describeDatabase, openSql, type Sql, type SqlOptions } from "../src/storage/client.ts";
import { startEmbeddedPostgres } from "../src/storage/embedded.ts";
import { migrate } from "../src/storage/migrate.ts";
import { sleep } from "./wait.ts";

/** A scratch database; `drop()` removes it (and its role) and may run twice. */
export type ScratchDatabase = {
  /** `calsync_<purpose>[_<prefix>]_<12 hex digits>`; an own role has the same name. */
  name: string;
  /** The database as the server's administrator. */
  url: string;
  /** The database as its own login role when created with `ownRole`, else `url`. */
  roleUrl: string;
  host: string;
  port: number;
  /** `host:port/name`, safe to print. */
  description: string;
  drop(): Promise<void>;
};

/** A migrated scratch database with a pool on it; `close()` ends the pool and drops it. */
export type MigratedDatabase = ScratchDatabase & {
  sql: Sql;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
};

const DEFAULT_PORT = 5432;
const EMBEDDED_DIR_PREFIX = "calsync-test-pg-";

// One admin URL per test file: each file runs in its own runtime (also under --parallel), so
// each gets its own embedded server when it needs one, with its own directory and port.
let adminUrl: Promise<string> | undefined;

/** What a scratch database is for, and how it is named and owned. */
export type ScratchOptions = {
  /** `test`, `bench`, `drill`: the second part of the name. */
  purpose: string;
  /** 1-30 letters, digits or underscores after the purpose (lower-cased). */
  prefix?: string;
  /** A login role of the database's name, with a random password, owns it (needs CREATEROLE). */
  ownRole?: boolean;
};

/**
 * Creates `calsync_test_<prefix>_<random>` on `TEST_DATABASE_URL` (default: the server at
 * 127.0.0.1:5432, or an embedded server when nothing answers there); no migrations applied.
 */
export async function createTestDatabase(prefix?: string): Promise<ScratchDatabase> {
  // A bad prefix fails before a server is probed or started.
  scratchLabel({ purpose: "test", prefix });
  const admin = await (adminUrl ??= chooseAdminUrl()).catch((e) => {
    adminUrl = undefined;
    throw e;
  });
  return await createScratchDatabase(admin, { purpose: "test", prefix });
}

/** Creates and migrates a test database of its own for one test file or test. */
export async function createMigratedDatabase(prefix?: string): Promise<MigratedDatabase> {
  const database = await createTestDatabase(prefix);
  return await migrateScratchDatabase(database, { max: 8, statementTimeoutMs: 10_000 });
}

/** Creates a scratch database on `serverUrl`'s server, whose user needs CREATEDB. */
export async function createScratchDatabase(
  serverUrl: string,
  options: ScratchOptions,
): Promise<ScratchDatabase> {
  const random = crypto.randomUUID().replaceAll("-", "").slice(0, 12);
  const name = `${scratchLabel(options)}_${random}`;
  const password = crypto.randomUUID().replaceAll("-", "");
  await withAdmin(serverUrl, `create database "${name}"`, async (sql) => {
    if (!options.ownRole) return void await sql`create database ${sql(name)}`;
    // A password cannot be a parameter; name and password hold only [a-z0-9_] here.
    await sql.unsafe(`create role "${name}" login password '${password}'`);
    await sql.unsafe(`create database "${name}" owner "${name}"`);
  });
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  const role = new URL(url);
  if (options.ownRole) {
    role.username = name;
    role.password = password;
  }
  let dropped: Promise<void> | undefined;
  return {
    name,
    url: url.href,
    roleUrl: role.href,
    host: url.hostname || "127.0.0.1",
    port: Number(url.port || DEFAULT_PORT),
    description: describeDatabase(url.href),
    drop: () =>
      dropped ??= dropDatabase(serverUrl, name, options.ownRole === true).catch((e) => {
        dropped = undefined;
        throw e;
      }),
  };
}

/** Migrates `database` through a new pool with `pool`'s options; drops it if that fails. */
export async function migrateScratchDatabase(
  database: ScratchDatabase,
  pool: SqlOptions,
): Promise<MigratedDatabase> {
  const sql = openSql(database.url, pool);
  try {
    await migrate(sql);
  } catch (error) {
    await sql.end({ timeout: 1 });
    await database.drop();
    throw error;
  }
  let closed: Promise<void> | undefined;
  const close = () =>
    closed ??= (async () => {
      await sql.end({ timeout: 2 });
      await database.drop();
    })();
  return { ...database, sql, close, [Symbol.asyncDispose]: close };
}

/**
 * Starts an embedded PostgreSQL server with its data in a new temporary directory named
 * `<dirPrefix><random>`; `stop()` stops it and removes the directory.
 */
export async function startEmbeddedServer(
  dirPrefix: string,
): Promise<{ url: string; port: number; dir: string; stop(): Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix: dirPrefix });
  // makeTempDir creates it 0700; as root the server runs as "postgres", which must enter it.
  await Deno.chmod(dir, 0o755);
  const server = await startEmbeddedPostgres({ dataDir: join(dir, "data") });
  return {
    url: server.url,
    port: server.port,
    dir,
    async stop() {
      await server.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

// `calsync_<purpose>[_<prefix>]`, after checking both parts are safe in an identifier.
function scratchLabel(options: ScratchOptions): string {
  if (!/^[a-z]{1,10}$/.test(options.purpose)) {
    throw new Error(
      `Cannot create scratch database: 'purpose' must be 1-10 lower-case letters: current value is "${options.purpose}"`,
    );
  }
  const label = options.prefix?.toLowerCase();
  if (label !== undefined && !/^[a-z0-9_]{1,30}$/.test(label)) {
    throw new Error(
      `Cannot create ${options.purpose} database: 'prefix' must be 1-30 letters, digits or underscores: current value is "${options.prefix}"`,
    );
  }
  return ["calsync", options.purpose, label].filter(Boolean).join("_");
}

async function dropDatabase(serverUrl: string, name: string, ownRole: boolean): Promise<void> {
  // A daemon may only just have exited; a forced drop does not wait for its backends, but the
  // role's last sessions can still be ending, hence a few attempts.
  for (let attempt = 1;; attempt++) {
    try {
      await withAdmin(serverUrl, `drop database "${name}"`, async (sql) => {
        await sql`drop database if exists ${sql(name)} with (force)`;
        if (ownRole) await sql`drop role if exists ${sql(name)}`;
      });
      return;
    } catch (error) {
      if (attempt >= 3) throw error;
      await sleep(500);
    }
  }
}

async function withAdmin(
  url: string,
  what: string,
  work: (sql: postgres.Sql) => Promise<void>,
): Promise<void> {
  // A connection per call, closed before returning, so the test sanitizers see no leaks.
  const sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 10 });
  try {
    await work(sql);
  } catch (e) {
    throw new Error(`Cannot ${what} on ${redact(url)}: ${e instanceof Error ? e.message : e}`, {
      cause: e,
    });
  } finally {
    await sql.end({ timeout: 5 });
  }
}

async function chooseAdminUrl(): Promise<string> {
  const configured = Deno.env.get("TEST_DATABASE_URL");
  if (configured) return configured;
  // CALSYNC_TEST_PG_PROBE_PORT moves the default server, e.g. to an unused port to exercise
  // the embedded fallback on a machine whose own server listens on 5432.
  const port = Number(Deno.env.get("CALSYNC_TEST_PG_PROBE_PORT") ?? DEFAULT_PORT);
  if (await answers(port)) return `postgres://postgres@127.0.0.1:${port}/postgres`;
  return await startFileServer(port);
}

async function answers(port: number): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.close();
    return true;
  } catch {
    return false;
  }
}

async function startFileServer(probedPort: number): Promise<string> {
  await reapOrphanedServers();
  const started = performance.now();
  const server = await startEmbeddedServer(`${EMBEDDED_DIR_PREFIX}${Deno.pid}-`);
  console.error(
    `test_database: nothing answers at 127.0.0.1:${probedPort} and TEST_DATABASE_URL is unset, ` +
      `so this test file uses an embedded PostgreSQL server on port ${server.port} ` +
      `(started in ${Math.round(performance.now() - started)} ms)`,
  );
  // No test owns this server, so it lives until the file's runtime unloads; unload handlers
  // must be synchronous, hence a fast-shutdown signal and a short synchronous wait.
  globalThis.addEventListener("unload", () => stopSync(server.dir));
  return server.url;
}

// Stops the server in `dir` (if running) and deletes `dir`, without awaiting anything.
function stopSync(dir: string): void {
  // The server's files are in data/postgres; in data itself for a run from before that layout.
  const v1 = readSync(join(dir, "data", "PG_VERSION")) !== "";
  const pidFile = join(dir, "data", ...(v1 ? [] : ["postgres"]), "postmaster.pid");
  const pid = Number.parseInt(readSync(pidFile).split("\n")[0], 10);
  if (pid > 0) {
    try {
      Deno.kill(pid, "SIGINT");
    } catch {
      // Already gone.
    }
  }
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let waited = 0; waited < 10_000 && readSync(pidFile) !== ""; waited += 50) {
    Atomics.wait(pause, 0, 0, 50);
  }
  try {
    Deno.removeSync(dir, { recursive: true });
  } catch {
    // Best effort: reapOrphanedServers() retries on the next run.
  }
}

// A test run killed before unload (Ctrl-C) leaves servers running and directories behind;
// their names carry the pid of the Deno process that made them.
async function reapOrphanedServers(): Promise<void> {
  // Liveness comes from /proc; without it (not Linux) nothing is reaped rather than guessed.
  if (!isAlive(Deno.pid)) return;
  const tmp = Deno.env.get("TMPDIR") ?? "/tmp";
  for await (const entry of Deno.readDir(tmp)) {
    const owner = Number(entry.name.slice(EMBEDDED_DIR_PREFIX.length).split("-")[0]);
    if (!entry.isDirectory || !entry.name.startsWith(EMBEDDED_DIR_PREFIX)) continue;
    if (!Number.isInteger(owner) || owner === Deno.pid || isAlive(owner)) continue;
    stopSync(join(tmp, entry.name));
  }
}

function isAlive(pid: number): boolean {
  // A killed process can linger as a zombie until its parent reaps it: that counts as gone.
  const stat = readSync(`/proc/${pid}/stat`);
  return stat !== "" && stat[stat.lastIndexOf(")") + 2] !== "Z";
}

function readSync(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return "";
  }
}

function redact(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = "***";
  return parsed.href;
}
