import { join } from "node:path";
import postgres from "postgres";
import { startEmbeddedPostgres } from "../../src/storage/embedded.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../support/assert.ts";

async function withSql<T>(url: string, work: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 5 });
  try {
    return await work(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

async function withTempDir(work: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "calsync-embedded-test-" });
  // As root the server runs as "postgres", which must be able to enter the directory.
  await Deno.chmod(dir, 0o755);
  try {
    await work(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("startEmbeddedPostgres() serves a database that keeps its tables across restarts", async () => {
  await withTempDir(async (dir) => {
    const dataDir = join(dir, "data");

    const first = await startEmbeddedPostgres({ dataDir });
    try {
      assertStringIncludes(first.url, `@127.0.0.1:${first.port}/postgres`);
      await withSql(first.url, async (sql) => {
        const [{ version }] = await sql<{ version: string }[]>`select version()`;
        assert(/^PostgreSQL \d+/.test(version), `unexpected version(): ${version}`);
        await sql`create table calendars (id int primary key, name text not null)`;
        await sql`insert into calendars values (1, 'Work')`;
      });
    } finally {
      await first.stop();
    }
    await assertRejects(() => withSql(first.url, (sql) => sql`select 1`));

    const second = await startEmbeddedPostgres({ dataDir });
    try {
      const rows = await withSql(second.url, (sql) => sql`select name from calendars order by id`);
      assertEquals(rows.map((row) => row.name), ["Work"]);
    } finally {
      await second.stop();
    }
    // A second stop() is harmless, so shutdown paths need not track who stopped first.
    await second.stop();
  });
});

Deno.test("startEmbeddedPostgres() works in a data directory that already holds other files", async () => {
  await withTempDir(async (dataDir) => {
    await Deno.writeTextFile(join(dataDir, "notes.txt"), "not PostgreSQL's");
    const server = await startEmbeddedPostgres({ dataDir });
    try {
      assertEquals(server.serverDir, join(dataDir, "postgres"));
      await withSql(server.url, (sql) => sql`select 1`);
    } finally {
      await server.stop();
    }
    assert(await exists(join(dataDir, "postgres", "PG_VERSION")), "no server files in postgres/");
    assertEquals(await Deno.readTextFile(join(dataDir, "notes.txt")), "not PostgreSQL's");
  });
});

Deno.test("startEmbeddedPostgres() keeps a v1 data directory (the server's files in it directly) and its data", async () => {
  await withTempDir(async (dir) => {
    const first = await startEmbeddedPostgres({ dataDir: join(dir, "data") });
    try {
      await withSql(first.url, async (sql) => {
        await sql`create table calendars (id int primary key, name text not null)`;
        await sql`insert into calendars values (1, 'Work')`;
      });
    } finally {
      await first.stop();
    }
    // A v1 data directory is a server directory at the top.
    const v1 = join(dir, "v1");
    await Deno.rename(join(dir, "data", "postgres"), v1);

    const messages: string[] = [];
    const second = await startEmbeddedPostgres({
      dataDir: v1,
      log: (message) => messages.push(message),
    });
    try {
      assertEquals(second.serverDir, v1);
      const rows = await withSql(second.url, (sql) => sql`select name from calendars order by id`);
      assertEquals(rows.map((row) => row.name), ["Work"]);
    } finally {
      await second.stop();
    }
    assert(messages.some((m) => m.includes("v1 layout")), `log: ${messages.join(" | ")}`);
    assertEquals(await exists(join(v1, "postgres")), false, "a v2 server was initialised too");
  });
});

Deno.test("startEmbeddedPostgres() names the data directory and the cause when the port is taken", async () => {
  await withTempDir(async (dir) => {
    const dataDir = join(dir, "data");
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      const error = await assertRejects(() =>
        startEmbeddedPostgres({ dataDir, port: listener.addr.port })
      );
      assertStringIncludes(error.message, `Cannot start embedded PostgreSQL in "${dataDir}": `);
      assertStringIncludes(error.message, 'could not bind IPv4 address "127.0.0.1"');
    } finally {
      listener.close();
    }
  });
});

Deno.test("startEmbeddedPostgres() rejects a port outside 1-65535 before touching the disk", async () => {
  await assertRejects(
    () => startEmbeddedPostgres({ dataDir: "./never-created", port: 70000 }),
    Error,
    'Cannot start embedded PostgreSQL in "./never-created": invalid port: ',
  );
  assertEquals(await Deno.stat("./never-created").catch(() => undefined), undefined);
});
