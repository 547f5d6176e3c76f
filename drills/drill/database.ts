/** @module The drill's scratch database and role, on `DATABASE_URL`'s server or an embedded one. */
import postgres from "postgres";
import { openSql, type Sql } from "../../src/storage/client.ts";
import {
  createScratchDatabase,
  type ScratchDatabase,
  startEmbeddedServer,
} from "../../testkit/scratch_database.ts";
import { waitFor } from "../../testkit/wait.ts";

/** A scratch database owned by a scratch login role, which the daemon under test uses. */
export type DrillDatabase = Pick<ScratchDatabase, "name" | "roleUrl" | "host" | "port"> & {
  /** A pool as the administrator on the scratch database, straight to the server. */
  adminSql: Sql;
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

/**
 * Creates the scratch role and database on `adminUrl`'s server, or on an embedded server when
 * `adminUrl` is undefined. The administrator needs CREATEROLE and CREATEDB.
 */
export async function openDrillDatabase(adminUrl: string | undefined): Promise<DrillDatabase> {
  const embedded = adminUrl === undefined ? await startEmbeddedServer("calsync-drill-pg-") : null;
  let scratch: ScratchDatabase;
  try {
    scratch = await createScratchDatabase(embedded?.url ?? adminUrl!, {
      purpose: "drill",
      ownRole: true,
    });
  } catch (error) {
    await embedded?.stop();
    throw new Error(
      `Cannot create the drill's scratch role and database: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const { name, roleUrl, host, port } = scratch;
  const adminSql = openSql(scratch.url, { max: 4, applicationName: "calsync-drill" });

  async function roleBackends(): Promise<number> {
    const [row] = await adminSql<{ n: number }[]>`
      select count(*)::int as n from pg_stat_activity where datname = ${name} and usename = ${name}`;
    return row.n;
  }

  return {
    name,
    adminSql,
    roleUrl,
    host,
    port,
    description: `${scratch.description}${embedded ? " (embedded)" : ""}`,
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
        const hog = postgres(roleUrl, { max: 1, onnotice: () => {}, connect_timeout: 5 });
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
      await scratch.drop();
      await embedded?.stop();
    },
  };
}
