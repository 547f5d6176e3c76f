import { assert, assertEquals } from "../support/assert.ts";
import { logger, setupLogging, teardownLogging } from "../../src/log/setup.ts";
import { redact, REDACTED, redactText } from "../../src/log/redact.ts";

Deno.test("redact() masks secret-named fields at any depth", () => {
  const out = redact({
    refresh_token: "1//rt",
    nested: { clientState: "cs", Authorization: "Bearer abc", list: [{ client_secret: "s" }] },
    connection_id: "c1",
  }) as Record<string, unknown>;
  assertEquals(out, {
    refresh_token: REDACTED,
    nested: { clientState: REDACTED, Authorization: REDACTED, list: [{ client_secret: REDACTED }] },
    connection_id: "c1",
  });
});

Deno.test("redactText() masks URL passwords, bearer tokens and secret query parameters", () => {
  assertEquals(
    redactText("postgres://calsync:s3cr3t@db:5432/x"),
    `postgres://calsync:${REDACTED}@db:5432/x`,
  );
  assertEquals(redactText("sent Bearer ya29.a0Af"), `sent Bearer ${REDACTED}`);
  assertEquals(
    redactText("GET /token?refresh_token=abc&x=1"),
    `GET /token?refresh_token=${REDACTED}&x=1`,
  );
});

Deno.test("log lines are JSON objects with time, level, category, message and fields, redacted", async () => {
  const lines: string[] = [];
  await setupLogging("info", (line) => lines.push(line));
  try {
    logger("test").error("Refresh failed for {connection_id}", {
      connection_id: "c1",
      refresh_token: "1//very-secret",
      error: Object.assign(new Error("fetch to https://u:pw@x failed"), { code: "E1" }),
    });
    logger("test").debug("not shown at info");
  } finally {
    await teardownLogging();
  }
  assertEquals(lines.length, 1);
  assert(lines[0].endsWith("\n"));
  const line = JSON.parse(lines[0]);
  assertEquals(line.level, "error");
  assertEquals(line.category, "calsync.test");
  assertEquals(line.message, "Refresh failed for c1");
  assertEquals(line.connection_id, "c1");
  assertEquals(line.refresh_token, REDACTED);
  assertEquals(line.error.code, "E1");
  assert(!lines[0].includes("very-secret") && !lines[0].includes(":pw@"), lines[0]);
  assert(!Number.isNaN(Date.parse(line.time)));
});
