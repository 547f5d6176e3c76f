import { assert, assertEquals } from "../support/assert.ts";
import {
  CalsyncError,
  CommandError,
  ConfigError,
  DatabaseDeadlineError,
  DatabaseNotOpenError,
  DatabaseUnavailableError,
  EmbeddedDatabaseError,
  EmbeddedDatabaseUnavailableError,
  HttpError,
  LeaseLostError,
  MigrationError,
  SecretBoxError,
  SyncFailure,
  UsageError,
} from "../../src/core/errors.ts";

const cause = new Error("underlying");

const SAMPLES: [CalsyncError, string, string][] = [
  [new ConfigError(["PORT: must be an integer"]), "CONFIG_INVALID", "ConfigError"],
  [new UsageError("Missing required option --connection"), "USAGE_INVALID", "UsageError"],
  [new CommandError('No connection "x"'), "COMMAND_FAILED", "CommandError"],
  [new DatabaseNotOpenError(), "DATABASE_NOT_OPEN", "DatabaseNotOpenError"],
  [new DatabaseUnavailableError("db", cause), "DATABASE_UNAVAILABLE", "DatabaseUnavailableError"],
  [new DatabaseDeadlineError("Sync write timed out"), "DEADLINE_EXCEEDED", "DatabaseDeadlineError"],
  [
    new EmbeddedDatabaseUnavailableError("No binaries for this platform", cause),
    "EMBEDDED_UNAVAILABLE",
    "EmbeddedDatabaseUnavailableError",
  ],
  [new EmbeddedDatabaseError("Initdb failed"), "EMBEDDED_FAILED", "EmbeddedDatabaseError"],
  [new MigrationError("Checksum changed"), "MIGRATION_FAILED", "MigrationError"],
  [new LeaseLostError("c1"), "LEASE_LOST", "LeaseLostError"],
  [new SecretBoxError("Bad key"), "SECRET_UNREADABLE", "SecretBoxError"],
  [new SyncFailure({ kind: "timeout", message: "Timed out" }), "SYNC_FAILED", "SyncFailure"],
  [
    new HttpError(400, { type: "invalid_body", message: "Bad request" }),
    "HTTP_ERROR",
    "HttpError",
  ],
];

Deno.test("every calsync error carries a stable code, its own name and a sentence", () => {
  for (const [error, code, name] of SAMPLES) {
    assert(error instanceof CalsyncError, `${name} is not a CalsyncError`);
    assertEquals(error.code, code);
    assertEquals(error.name, name);
    assert(/^[A-Z]/.test(error.message), `${name} message "${error.message}" is not a sentence`);
  }
});

Deno.test("an error keeps the cause it was built with", () => {
  assertEquals(new DatabaseUnavailableError("db", cause).cause, cause);
  assertEquals(new SyncFailure({ kind: "network", message: "Reset" }, { cause }).cause, cause);
});
