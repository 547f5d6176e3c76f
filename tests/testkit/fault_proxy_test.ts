/** @module Specifies the fault proxy against raw TCP and against real PostgreSQL through postgres.js. */
import assert from "node:assert/strict";
import postgres from "postgres";
import { type FaultProxy, startFaultProxy } from "../../testkit/fault_proxy.ts";

const DATABASE_URL = "postgres://postgres@127.0.0.1:5432/postgres";
const target = new URL(DATABASE_URL);

type Sql = postgres.Sql;
type Client = { sql: Sql; appName: string; closes: () => number };

/** A one-connection postgres.js client that counts how often its connection closed. */
function connect(url: string): Client {
  let closes = 0;
  const appName = `fault_proxy_test_${crypto.randomUUID().slice(0, 8)}`;
  const sql = postgres(url, {
    max: 1,
    idle_timeout: 1,
    connect_timeout: 2,
    onnotice: () => {},
    onclose: () => closes++,
    connection: { application_name: appName },
  });
  return { sql, appName, closes: () => closes };
}

async function withProxy(fn: (proxy: FaultProxy, direct: Sql) => Promise<void>): Promise<void> {
  const proxy = await startFaultProxy({
    targetHostname: target.hostname,
    targetPort: Number(target.port),
  });
  const direct = connect(DATABASE_URL).sql;
  try {
    await fn(proxy, direct);
  } finally {
    await direct.end({ timeout: 1 });
    await proxy.close();
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves to "timeout" if `promise` has not settled within `ms`; the timer never outlives it. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | "timeout"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<"timeout">((resolve) => timer = setTimeout(() => resolve("timeout"), ms)),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function waitFor(what: string, check: () => Promise<boolean> | boolean): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    if (await check()) return;
    await delay(50);
  }
  throw new Error(`Timed out waiting until ${what}`);
}

/** Returns what `fn` rejected with, failing the test if it resolved. */
async function rejection(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (error) {
    return error;
  }
  throw new assert.AssertionError({ message: "Expected a rejection, but the promise resolved" });
}

function codeOf(error: unknown): unknown {
  return error instanceof Error ? (error as Error & { code?: unknown }).code : undefined;
}

async function backendsOf(direct: Sql, appName: string): Promise<number> {
  const [row] = await direct<{ count: number }[]>`
    select count(*)::int as count from pg_stat_activity where application_name = ${appName}`;
  return row.count;
}

async function withScratchTable(direct: Sql, fn: (table: string) => Promise<void>): Promise<void> {
  // Unquoted and random so the proxy can match plain statement text without clashing across runs.
  const table = `fault_proxy_scratch_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  await direct.unsafe(`create table ${table} (id int primary key, note text not null)`);
  try {
    await fn(table);
  } finally {
    await direct.unsafe(`drop table if exists ${table}`);
  }
}

// The proxy closes with a FIN (CONNECTION_CLOSED); a real peer reset surfaces as ECONNRESET or EPIPE.
const connectionLost = new Set(["CONNECTION_CLOSED", "ECONNRESET", "EPIPE"]);

/**
 * Works around porsager/postgres#1208 (3.4.9): when the connection dies under `sql.begin`, a
 * rejected callback makes postgres.js write its own ROLLBACK to a null socket from setImmediate,
 * an uncatchable TypeError that also bricks the pool slot. Never settling on connection loss
 * skips that ROLLBACK; `sql.begin` still rejects at once through its own close handler.
 */
function holdOnConnectionLoss<T>(work: Promise<T>): Promise<T> {
  return work.catch((error) =>
    connectionLost.has(String(codeOf(error))) ? new Promise<T>(() => {}) : Promise.reject(error)
  );
}

Deno.test("cutWhen() drops the matching chunk by default and forwards it with after: 'forward'", async () => {
  const encoder = new TextEncoder();
  const received: string[] = [];
  // An echo server that records what reached it, so the client knows when a chunk got through.
  const server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    for (let i = 0; i < 2; i++) {
      const conn = await server.accept();
      let text = "";
      try {
        for await (const chunk of conn.readable) {
          text += new TextDecoder().decode(chunk);
          await conn.write(chunk);
        }
      } catch {
        // The proxy hung up mid-echo; what arrived is already recorded.
      }
      received.push(text);
    }
  })();
  const proxy = await startFaultProxy({
    targetHostname: "127.0.0.1",
    targetPort: server.addr.port,
  });
  try {
    for (const after of ["drop", "forward"] as const) {
      const client = await Deno.connect({ hostname: proxy.hostname, port: proxy.port });
      await client.write(encoder.encode("hello"));
      assert.equal(await client.read(new Uint8Array(5)), 5);
      const cut = proxy.cutWhen("SECRET", { after });
      await client.write(encoder.encode("SECRET"));
      await cut;
      // The proxy closed its end, so the client reaches end-of-stream (after any late echo).
      while (await client.read(new Uint8Array(16)) !== null) continue;
      client.close();
    }
    await serving;
    assert.deepEqual(received, ["hello", "helloSECRET"]);
    assert.deepEqual(proxy.stats(), { open: 0, accepted: 2, cuts: 2, resets: 0 });
  } finally {
    server.close();
    await proxy.close();
  }
});

Deno.test("url() points a database URL at the proxy and keeps everything else", async () => {
  const proxy = await startFaultProxy({ targetHostname: "127.0.0.1", targetPort: 5432 });
  try {
    assert.deepEqual(
      proxy.url("postgres://app:s3cret@db.internal:5432/calsync?sslmode=disable"),
      `postgres://app:s3cret@127.0.0.1:${proxy.port}/calsync?sslmode=disable`,
    );
  } finally {
    await proxy.close();
  }
});

Deno.test("close() rejects cuts that never matched", async () => {
  const proxy = await startFaultProxy({ targetHostname: "127.0.0.1", targetPort: 5432 });
  const cut = proxy.cutWhen("never sent");
  await proxy.close();
  await assert.rejects(cut, /closed/);
});

Deno.test("queries pass through the proxy", async () => {
  await withProxy(async (proxy) => {
    const { sql } = connect(proxy.url(DATABASE_URL));
    try {
      const [row] = await sql<{ sum: number; text: string }[]>`
        select ${40}::int + 2 as sum, ${"é ✓"}::text as text`;
      assert.deepEqual(row, { sum: 42, text: "é ✓" });
      assert.deepEqual(proxy.stats(), { open: 1, accepted: 1, cuts: 0, resets: 0 });
    } finally {
      await sql.end({ timeout: 1 });
    }
  });
});

Deno.test("refuseNew(true) refuses new connections (ECONNREFUSED) and keeps open ones; refuseNew(false) listens again on the same port", async () => {
  await withProxy(async (proxy) => {
    const existing = connect(proxy.url(DATABASE_URL)).sql;
    const fresh = connect(proxy.url(DATABASE_URL)).sql;
    try {
      await existing`select 1`;
      const port = proxy.port;
      await proxy.refuseNew(true);
      const error = await rejection(() => fresh`select 1`);
      assert.equal(codeOf(error), "ECONNREFUSED");
      assert.equal((await existing<{ ok: number }[]>`select 1 as ok`)[0].ok, 1);

      await proxy.refuseNew(false);
      assert.equal(proxy.port, port);
      assert.equal((await fresh<{ ok: number }[]>`select 1 as ok`)[0].ok, 1);
    } finally {
      await existing.end({ timeout: 1 });
      await fresh.end({ timeout: 1 });
    }
  });
});

Deno.test("resetAll() fails an in-flight query with CONNECTION_CLOSED and postgres.js reconnects for the next one", async () => {
  await withProxy(async (proxy, direct) => {
    const client = connect(proxy.url(DATABASE_URL));
    try {
      await client.sql`select 1`;
      const inFlight = client.sql`select pg_sleep(30)`.then(() => null, (error) => error);
      await waitFor("the sleep runs", async () => {
        const [row] = await direct<{ count: number }[]>`
          select count(*)::int as count from pg_stat_activity
          where application_name = ${client.appName} and state = 'active'`;
        return row.count === 1;
      });
      proxy.resetAll();
      assert.equal(codeOf(await inFlight), "CONNECTION_CLOSED");
      assert.equal((await client.sql<{ ok: number }[]>`select 1 as ok`)[0].ok, 1);
      assert.equal(proxy.stats().resets, 1);
      assert.equal(proxy.stats().accepted, 2);
    } finally {
      await client.sql.end({ timeout: 1 });
      // The orphaned backend sleeps on until it next writes; end it rather than leave it 30 s.
      await direct`
        select pg_terminate_backend(pid) from pg_stat_activity
        where application_name = ${client.appName}`;
    }
  });
});

Deno.test("resetAll() on an idle connection: a query sent before postgres.js notices fails, one after reconnects", async () => {
  await withProxy(async (proxy) => {
    const client = connect(proxy.url(DATABASE_URL));
    try {
      await client.sql`select 1`;
      proxy.resetAll();
      // postgres.js does not retry: the query races the close and loses.
      const error = await rejection(() => client.sql`select 1`);
      assert.equal(codeOf(error), "CONNECTION_CLOSED");
      await waitFor("postgres.js saw the close", () => client.closes() >= 1);
      assert.equal((await client.sql<{ ok: number }[]>`select 1 as ok`)[0].ok, 1);
    } finally {
      await client.sql.end({ timeout: 1 });
    }
  });
});

Deno.test("cutWhen(INSERT) inside sql.begin rejects the transaction and the server rolls all of it back", async () => {
  await withProxy(async (proxy, direct) => {
    await withScratchTable(direct, async (table) => {
      await direct.unsafe(`insert into ${table} (id, note) values (1, 'before')`);
      const client = connect(proxy.url(DATABASE_URL));
      try {
        const cut = proxy.cutWhen(new RegExp(`insert into ${table}`, "i"));
        const started = performance.now();
        const error = await rejection(() =>
          client.sql.begin((tx) =>
            holdOnConnectionLoss((async () => {
              await tx.unsafe(`update ${table} set note = 'changed' where id = 1`);
              await tx.unsafe(`insert into ${table} (id, note) values (2, 'cut')`);
            })())
          )
        );
        await cut;
        assert.equal(codeOf(error), "CONNECTION_CLOSED");
        assert.ok(performance.now() - started < 1000, "sql.begin should reject promptly");
        assert.equal(proxy.stats().cuts, 1);

        await waitFor(
          "the server dropped the backend",
          async () => await backendsOf(direct, client.appName) === 0,
        );
        // A rolled-back transaction leaves no row lock: this update would block otherwise.
        await direct.begin(async (tx) => {
          await tx`set local lock_timeout = '1s'`;
          await tx.unsafe(`update ${table} set note = note where id = 1`);
        });
        assert.deepEqual([...await direct.unsafe(`select id, note from ${table} order by id`)], [
          { id: 1, note: "before" },
        ]);
        assert.equal((await client.sql<{ ok: number }[]>`select 1 as ok`)[0].ok, 1);
      } finally {
        await client.sql.end({ timeout: 1 });
      }
    });
  });
});

Deno.test("cutWhen(COMMIT): dropped, the transaction rolls back; forwarded, it commits though the client saw CONNECTION_CLOSED", async () => {
  await withProxy(async (proxy, direct) => {
    await withScratchTable(direct, async (table) => {
      const client = connect(proxy.url(DATABASE_URL));
      try {
        for (const [id, after] of [[1, "drop"], [2, "forward"]] as const) {
          const cut = proxy.cutWhen(/\bcommit\b/i, { after });
          const error = await rejection(() =>
            client.sql.begin(async (tx) => {
              await tx.unsafe(`insert into ${table} (id, note) values ($1, $2)`, [id, after]);
            })
          );
          await cut;
          assert.equal(codeOf(error), "CONNECTION_CLOSED");
          await waitFor(
            "the server dropped the backend",
            async () => await backendsOf(direct, client.appName) === 0,
          );
        }
        assert.deepEqual([...await direct.unsafe(`select id, note from ${table} order by id`)], [
          { id: 2, note: "forward" },
        ]);
        assert.equal(proxy.stats().cuts, 2);
      } finally {
        await client.sql.end({ timeout: 1 });
      }
    });
  });
});

Deno.test("postgres.js 3.4.9 still throws an uncaught TypeError when a connection dies inside sql.begin (porsager/postgres#1208)", async () => {
  // A canary: once this fails after an upgrade, holdOnConnectionLoss-style workarounds can go.
  const uncaught: unknown[] = [];
  const onError = (event: ErrorEvent) => {
    uncaught.push(event.error);
    event.preventDefault();
  };
  globalThis.addEventListener("error", onError);
  try {
    await withProxy(async (proxy) => {
      const client = connect(proxy.url(DATABASE_URL));
      try {
        const cut = proxy.cutWhen(/pg_sleep/);
        const error = await rejection(() => client.sql.begin((tx) => tx`select pg_sleep(0)`));
        await cut;
        assert.equal(codeOf(error), "CONNECTION_CLOSED");
        await waitFor("the stray ROLLBACK write ran", () => uncaught.length > 0);
        assert.ok(uncaught[0] instanceof TypeError);
        assert.ok(String(uncaught[0].message).includes("reading 'write'"));
      } finally {
        await client.sql.end({ timeout: 1 });
      }
    });
  } finally {
    globalThis.removeEventListener("error", onError);
  }
});

Deno.test("blackhole() stalls traffic with sockets open; turning it off and resetAll() recovers", async () => {
  await withProxy(async (proxy) => {
    const client = connect(proxy.url(DATABASE_URL));
    try {
      await client.sql`select 1`;
      proxy.blackhole(true);
      const stalled = client.sql`select 1 as ok`.then(() => "answered", (error) => error);
      assert.equal(await within(stalled, 300), "timeout");
      assert.equal(proxy.stats().open, 1);

      const closesBefore = client.closes();
      proxy.blackhole(false);
      proxy.resetAll();
      await stalled;
      await waitFor("postgres.js saw the close", () => client.closes() > closesBefore);
      assert.equal((await client.sql<{ ok: number }[]>`select 1 as ok`)[0].ok, 1);
    } finally {
      await client.sql.end({ timeout: 1 });
    }
  });
});
