/** @module The drill's scratch database and role, on `DATABASE_URL`'s server or an embedded one. */
import postgres from "postgres";
import { join } from "node:path";
import { openSql, type Sql } from "../../src/storage/client.ts";
import { sleep, waitFor } from "../../testkit/wait.ts";

/** A scratch database owned by a scratch login role, which the daemon under test uses. */
export type DrillDatabase = {
  /** Database and role name, `calsync_drill_<random>`. */
  name: string;
  /** A pool as the administrator on the scratch database, straight to the server. */
  adminSql: Sql;
  /** The URL of the scratch database as the scratch role, straight to the server. */
  roleUrl: string;
  host: string;
  port: number;
  /** `host:port/name (embedded)` for messages; never a password. */
  description: string;
  embeddedDir: string | null;
  /**
   * Takes every connection slot of the scratch database away from the daemon: other clients of
   * its role hold all slots the database's CONNECTION LIMIT allows. The caller must first keep
   * the daemon from connecting (the fault proxy refuses), so its slots are free to take.
   */
  holdAllSlots(): Promise<{ held: number; release(): Promise<void> }>;
  /** Drops database and role (or keeps them) and stops an embedded server. */
  close(options: { keep: boolean }): Promise<void>;
};

// The slots the role may hold while exhausted; small, so the hold is quick to build.
const SLOT_LIMIT = 3;

function randomName(): string {
  return `calsync_drill_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
}

async function withServer(url: string, work: (sql: postgres.Sql) => Promise<void>) {
  const sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 10 });
  try {
    await work(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

async function startEmbedded(): Promise<{ url: string; dir: string; stop(): Promise<void> }> {
  const { startEmbeddedPostgres } = await import("../../src/storage/embedded.ts");
  const dir = await Deno.makeTempDir({ prefix: "calsync-drill-pg-" });
  // As root the server runs as "postgres", which must be able to enter the directory.
  await Deno.chmod(dir, 0o755);
  const server = await startEmbeddedPostgres({ dataDir: join(dir, "data") });
  return {
    url: server.url,
    dir,
    async stop() {
      await server.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/**
 * Creates the scratch role and database on `adminUrl`'s server, or on an embedded server when
 * `adminUrl` is undefined. The administrator needs CREATEROLE and CREATEDB.
 */
export async function openDrillDatabase(adminUrl: string | undefined): Promise<DrillDatabase> {
  const embedded = adminUrl === undefined ? await startEmbedded() : null;
  const serverUrl = embedded?.url ?? adminUrl!;
  const name = randomName();
  const password = crypto.randomUUID().replaceAll("-", "");
  try {
    await withServer(serverUrl, async (sql) => {
      // Identifiers cannot be parameters; both are generated here from hex digits only.
      await sql.unsafe(`create role "${name}" login password '${password}'`);
      await sql.unsafe(`create database "${name}" owner "${name}"`);
    });
  } catch (error) {
    await embedded?.stop();
    throw new Error(
      `Cannot create the drill's scratch role and database: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const admin = new URL(serverUrl);
  admin.pathname = `/${name}`;
  const role = new URL(admin);
  role.username = name;
  role.password = password;
  const adminSql = openSql(admin.href, { max: 4, applicationName: "calsync-drill" });
  const host = admin.hostname || "127.0.0.1";
  const port = Number(admin.port || 5432);

  async function roleBackends(): Promise<number> {
    const [row] = await adminSql<{ n: number }[]>`
      select count(*)::int as n from pg_stat_activity where datname = ${name} and usename = ${name}`;
    return row.n;
  }

  return {
    name,
    adminSql,
    roleUrl: role.href,
    host,
    port,
    description: `${host}:${port}/${name}${embedded ? " (embedded)" : ""}`,
    embeddedDir: embedded?.dir ?? null,
    async holdAllSlots() {
      // Backends of connections the proxy just reset take a moment to exit.
      await waitFor(async () => (await roleBackends()) === 0, { timeoutMs: 5_000 });
      // Backends of superusers (the drill's own pool) count towards the limit without being
      // bound by it, so the limit leaves SLOT_LIMIT slots beyond them for the hogs to take.
      const [{ n: present }] = await adminSql<{ n: number }[]>`
        select count(*)::int as n from pg_stat_activity where datname = ${name}`;
      await adminSql.unsafe(
        `alter database "${name}" connection limit ${present + SLOT_LIMIT}`,
      );
      const hogs: postgres.Sql[] = [];
      // Open until refused: the server, not this count, says when every slot is taken.
      for (let i = 0; i < SLOT_LIMIT + 8; i++) {
        const hog = postgres(role.href, { max: 1, onnotice: () => {}, connect_timeout: 5 });
        try {
          await hog`select 1`;
          hogs.push(hog);
        } catch {
          await hog.end({ timeout: 1 });
          break;
        }
      }
      return {
        held: hogs.length,
        async release() {
          await Promise.all(hogs.map((hog) => hog.end({ timeout: 1 })));
          await adminSql.unsafe(`alter database "${name}" connection limit -1`);
        },
      };
    },
    async close({ keep }) {
      await adminSql.end({ timeout: 2 });
      if (keep) return;
      // The daemon may only just have exited; a forced drop does not wait for its backends.
      for (let attempt = 1;; attempt++) {
        try {
          await withServer(serverUrl, async (sql) => {
            await sql.unsafe(`drop database if exists "${name}" with (force)`);
            await sql.unsafe(`drop role if exists "${name}"`);
          });
          break;
        } catch (error) {
          if (attempt >= 3) throw error;
          await sleep(500);
        }
      }
      await embedded?.stop();
    },
  };
}
