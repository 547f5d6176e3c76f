import { assert, assertEquals, assertStringIncludes, assertThrows } from "../support/assert.ts";
import { ConfigError, loadConfig } from "../../src/config/config.ts";
import { parseDurationMs } from "../../src/core/duration.ts";

Deno.test("loadConfig() applies documented defaults and freezes the result", () => {
  const config = loadConfig({});
  assertEquals(config.PORT, 8080);
  assertEquals(config.LOG_LEVEL, "info");
  assertEquals(config.DATABASE_URL, undefined);
  assertEquals(config.GOOGLE_API_BASE_URL, "https://www.googleapis.com/calendar/v3");
  assertEquals(config.SYNC_PROVIDER_ALLOWLIST, null);
  assertEquals(config.WEBHOOK_DEDUPE_TTL, 72 * 3_600_000);
  assert(Object.isFrozen(config));
});

Deno.test("loadConfig() reports one line per invalid variable, naming it", () => {
  const error = assertThrows(
    () =>
      loadConfig({
        PORT: "eighty",
        LOG_LEVEL: "loud",
        DATABASE_URL: "mysql://root:hunter2@db/x",
        GOOGLE_API_BASE_URL: "not a url",
        WEBHOOK_DEDUPE_TTL: "forever",
      }),
    ConfigError,
  ) as ConfigError;
  assertEquals(error.problems.length, 5);
  for (
    const name of ["PORT", "LOG_LEVEL", "DATABASE_URL", "GOOGLE_API_BASE_URL", "WEBHOOK_DEDUPE_TTL"]
  ) {
    assert(error.problems.some((line) => line.startsWith(`${name}: `)), `no line for ${name}`);
  }
  assert(!error.message.includes("hunter2"), "a secret leaked into the message");
});

Deno.test("loadConfig() checks settings that depend on each other", () => {
  const error = assertThrows(
    () =>
      loadConfig({
        SYNC_BACKOFF_BASE_MS: "10000",
        SYNC_BACKOFF_MAX_MS: "5000",
        GOOGLE_CLIENT_ID: "id-only",
        SYNC_PROVIDER_ALLOWLIST: " , ",
      }),
    ConfigError,
  ) as ConfigError;
  assertStringIncludes(error.message, "SYNC_BACKOFF_BASE_MS");
  assertStringIncludes(error.message, "GOOGLE_CLIENT_SECRET");
  assertStringIncludes(error.message, "SYNC_PROVIDER_ALLOWLIST");
});

Deno.test("loadConfig() parses the provider allowlist", () => {
  const config = loadConfig({ SYNC_PROVIDER_ALLOWLIST: "google, work-outlook" });
  assertEquals(config.SYNC_PROVIDER_ALLOWLIST, ["google", "work-outlook"]);
});

Deno.test("parseDurationMs() reads units and rejects garbage", () => {
  assertEquals(parseDurationMs("1500"), 1_500);
  assertEquals(parseDurationMs("30s"), 30_000);
  assertEquals(parseDurationMs("2h"), 7_200_000);
  assertEquals(parseDurationMs("1.5d"), 129_600_000);
  assertEquals(parseDurationMs("soon"), null);
});

Deno.test("loadConfig() reads DATABASE_URL and client secrets from _FILE variables (systemd credentials)", () => {
  const files: Record<string, string> = {
    "/run/credentials/calsync.service/database_url": "postgres://u:pw@db/x\n",
    "/run/credentials/calsync.service/google": "GOCSPX-secret\n",
  };
  const config = loadConfig({
    DATABASE_URL_FILE: "/run/credentials/calsync.service/database_url",
    GOOGLE_CLIENT_ID: "id",
    GOOGLE_CLIENT_SECRET_FILE: "/run/credentials/calsync.service/google",
  }, (path) =>
    files[path] ?? (() => {
      throw new Error("not found");
    })());
  assertEquals(config.DATABASE_URL, "postgres://u:pw@db/x");
  assertEquals(config.GOOGLE_CLIENT_SECRET, "GOCSPX-secret");
  const both = assertThrows(
    () => loadConfig({ DATABASE_URL: "postgres://a/b", DATABASE_URL_FILE: "/x" }, () => ""),
    ConfigError,
  ) as ConfigError;
  assertEquals(both.problems, ["DATABASE_URL_FILE: set either DATABASE_URL or DATABASE_URL_FILE"]);
});
