/** @module A scratch database for one benchmark run, migrated, and dropped at the end. */
import postgres from "postgres";
import { describeDatabase, openSql, type Sql } from "../src/storage/client.ts";
import { migrate } from "../src/storage/migrate.ts";

/** The default server: the machine's own PostgreSQL, as the tests use it. */
export const DEFAULT_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres";

/** A migrated scratch database and a pool on it for the benchmark's own statements. */
export type ScratchDatabase = {
  url: string;
  name: string;
  /** `host:port/name`, safe to print. */
  description: string;
  sql: Sql;
  drop(): Promise<void>;
};

/** Picks the server: DATABASE_URL, else TEST_DATABASE_URL, else the local default. */
export function adminUrlFromEnv(env: Record<string, string | undefined>): string {
  return env.DATABASE_URL || env.TEST_DATABASE_URL || DEFAULT_ADMIN_URL;
}

/** Creates `calsync_bench_<random>` on the admin URL's server and applies the migrations. */
export async function createScratchDatabase(adminUrl: string): Promise<ScratchDatabase> {
  const name = `calsync_bench_${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;
  await withAdmin(adminUrl, (sql) => sql`create database ${sql(name)}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  // Large enough for the bulk ceilings and the pollers; statements may run for a while.
  const sql = openSql(url.href, { max: 8, statementTimeoutMs: 600_000, applicationName: "bench" });
  try {
    await migrate(sql);
  } catch (error) {
    await sql.end({ timeout: 1 });
    await withAdmin(
      adminUrl,
      (admin) => admin`drop database if exists ${admin(name)} with (force)`,
    );
    throw error;
  }
  let dropped = false;
  return {
    url: url.href,
    name,
    description: describeDatabase(url.href),
    sql,
    async drop() {
      if (dropped) return;
      dropped = true;
      await sql.end({ timeout: 2 });
      await withAdmin(
        adminUrl,
        (admin) => admin`drop database if exists ${admin(name)} with (force)`,
      );
    },
  };
}

async function withAdmin(url: string, work: (sql: postgres.Sql) => Promise<unknown>) {
  const sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 10 });
  try {
    await work(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}
