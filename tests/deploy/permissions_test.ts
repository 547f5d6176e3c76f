import { assert, assertEquals } from "../support/assert.ts";
import { compileArgs } from "../../deploy/compile.ts";
import { startFakeGoogle } from "../../testkit/fake_google.ts";
import { createTestDatabase } from "../../testkit/scratch_database.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** The permission flags `deno task compile` bakes into the binary, for `deno run`. */
function bakedPermissions(env: Record<string, string> = {}): string[] {
  return compileArgs(env).filter((arg) =>
    arg.startsWith("--allow-") || arg.startsWith("--v8-flags")
  );
}

async function runWithBakedPermissions(
  args: string[],
  env: Record<string, string>,
  build: Record<string, string> = {},
  timeoutMs = 15_000,
  stdin?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", ...bakedPermissions(build), MAIN, ...args],
    env: { NO_COLOR: "1", ...env },
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(stdin));
    await writer.close();
  }
  const timer = setTimeout(() => child.kill("SIGTERM"), timeoutMs);
  const output = await child.output();
  clearTimeout(timer);
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

Deno.test("with the binary's baked-in permissions the daemon runs its CLI against a database", async () => {
  const database = await createTestDatabase("perms");
  try {
    const result = await runWithBakedPermissions(["providers", "list", "--json"], {
      DATABASE_URL: database.url,
    });
    assertEquals(result.code, 0, result.stderr);
    assertEquals(JSON.parse(result.stdout), []);
  } finally {
    await database.drop();
  }
});

Deno.test("the baked-in permissions do not stretch to the embedded database: DATABASE_URL is required", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const result = await runWithBakedPermissions(["providers", "list"], { CALSYNC_DATA_DIR: dir });
    assertEquals(result.code, 1, "it started the embedded server without the permissions for it");
    assert(result.stderr.includes("may not start the embedded PostgreSQL"), result.stderr);
    assert(result.stderr.includes("set DATABASE_URL"), result.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("with CALSYNC_ALLOW_NET, a provider host outside the list cannot be reached", async () => {
  const database = await createTestDatabase("perms_net");
  await using google = startFakeGoogle();
  google.addRefreshToken("rt");
  const db = new URL(database.url);
  const build = { CALSYNC_ALLOW_NET: `${db.hostname}:${db.port || 5432},127.0.0.1:0` };
  const env = {
    DATABASE_URL: database.url,
    GOOGLE_API_BASE_URL: google.baseUrl,
    GOOGLE_TOKEN_URL: google.tokenUrl,
  };
  try {
    for (
      const args of [
        ["providers", "add", "--kind", "google", "--name", "g", "--allowlisted"],
        [
          "connections",
          "add",
          "--provider",
          "g",
          "--calendar",
          "primary",
          "--refresh-token-file",
          "-",
        ],
      ]
    ) {
      // The token comes on stdin: the binary may read only its own files.
      const stdin = args.includes("--refresh-token-file") ? "rt\n" : undefined;
      assertEquals((await runWithBakedPermissions(args, env, build, 15_000, stdin)).code, 0);
    }
    const daemon = runWithBakedPermissions(
      ["serve"],
      { ...env, HOST: "127.0.0.1", PORT: "0", SYNC_BACKOFF_BASE_MS: "60000" },
      build,
      4_000,
    );
    const result = await daemon;
    const failure = result.stdout.split("\n").filter(Boolean).map((line) => JSON.parse(line)).find(
      (line) => line.message?.startsWith("Sync of connection"),
    );
    assert(failure, `no sync failure logged: ${result.stdout.slice(0, 2000)}`);
    assertEquals(failure.kind, "network");
    assert(/net access|NotCapable/i.test(failure.error), failure.error);
    assertEquals(google.countRequests(), 0, "the fake provider was reached");
  } finally {
    await database.drop();
  }
});
