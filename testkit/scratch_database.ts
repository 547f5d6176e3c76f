/** @module Gives each test file a fresh, empty PostgreSQL database of its own. */

import postgres from "postgres";
import { join } from "node:path";
import { startEmbeddedPostgres } from "../src/storage/embedded.ts";

/** A database created for one test file; `drop()` removes it. */
export type TestDatabase = { url: string; name: string; drop(): Promise<void> };

const DEFAULT_PORT = 5432;
const EMBEDDED_DIR_PREFIX = "calsync-test-pg-";

// One admin URL per test file: each file runs in its own runtime (also under --parallel), so
// each gets its own embedded server when it needs one, with its own directory and port.
let adminUrl: Promise<string> | undefined;

/**
 * Creates `calsync_test_<prefix>_<random>` on `TEST_DATABASE_URL` (default: the server at
 * 127.0.0.1:5432, or an embedded server when nothing answers there); no migrations applied.
 */
export async function createTestDatabase(prefix?: string): Promise<TestDatabase> {
  const label = prefix?.toLowerCase();
  if (label !== undefined && !/^[a-z0-9_]{1,30}$/.test(label)) {
    throw new Error(
      `Cannot create test database: 'prefix' must be 1-30 letters, digits or underscores: current value is "${prefix}"`,
    );
  }
  const random = crypto.randomUUID().replaceAll("-", "").slice(0, 12);
  const name = ["calsync_test", label, random].filter(Boolean).join("_");
  const admin = await (adminUrl ??= chooseAdminUrl()).catch((e) => {
    adminUrl = undefined;
    throw e;
  });
  await withAdmin(admin, `create database "${name}"`, async (sql) => {
    await sql`create database ${sql(name)}`;
  });
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return {
    url: url.href,
    name,
    drop: () =>
      withAdmin(admin, `drop database "${name}"`, async (sql) => {
        await sql`drop database if exists ${sql(name)} with (force)`;
      }),
  };
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
  const dir = await Deno.makeTempDir({ prefix: `${EMBEDDED_DIR_PREFIX}${Deno.pid}-` });
  // makeTempDir creates it 0700; as root the server runs as "postgres", which must enter it.
  await Deno.chmod(dir, 0o755);
  const dataDir = join(dir, "data");
  const started = performance.now();
  const server = await startEmbeddedPostgres({ dataDir });
  console.error(
    `test_database: nothing answers at 127.0.0.1:${probedPort} and TEST_DATABASE_URL is unset, ` +
      `so this test file uses an embedded PostgreSQL server on port ${server.port} ` +
      `(started in ${Math.round(performance.now() - started)} ms)`,
  );
  // No test owns this server, so it lives until the file's runtime unloads; unload handlers
  // must be synchronous, hence a fast-shutdown signal and a short synchronous wait.
  globalThis.addEventListener("unload", () => stopSync(dir));
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
