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

Deno.test("redactText() masks every form of secret the hardening campaign found in free text", () => {
  const cases: [form: string, text: string, secret: string][] = [
    ["URL with an empty user", "connect postgres://:pw0rd@db:5432/x failed", "pw0rd"],
    ["password holding an @", "postgres://calsync:p@ss@w0rd@db/x", "ss@w0rd"],
    ["password holding an @ (first part)", "postgres://calsync:p@ss@w0rd@db/x", "calsync:p@"],
    ["?password= in a URL", "postgres://db/x?password=hunter2&sslmode=require", "hunter2"],
    ["&sslpassword= in a URL", "postgres://db/x?sslmode=verify-full&sslpassword=k3y", "k3y"],
    ["password= in a DSN", "host=db password=hunter2 dbname=x", "hunter2"],
    ["lowercase bearer", "authorization: bearer ya29.a0AfB_secret", "ya29.a0AfB_secret"],
    ["uppercase BEARER", "BEARER ya29.a0AfB_secret", "ya29.a0AfB_secret"],
    ["refresh_token= at the start", "refresh_token=1//0gXyZ&grant_type=refresh_token", "1//0gXyZ"],
    ["refresh_token= after a space", "body was refresh_token=1//0gXyZ", "1//0gXyZ"],
    ["client_secret= in a form body", "grant_type=x&client_secret=GOCSPX-abc", "GOCSPX-abc"],
    ["JSON refresh_token in text", 'Google said {"refresh_token":"1//0gXyZ","x":1}', "1//0gXyZ"],
    ["JSON access_token with spaces", 'answer { "access_token" : "ya29.tok" }', "ya29.tok"],
    ["JSON clientState in text", 'item {"clientState":"Zx8Qw2Er4"}', "Zx8Qw2Er4"],
    ["?validationToken=", "POST /webhooks/microsoft?validationToken=abc123", "abc123"],
    ["?code=", "GET /callback?code=4/0AfJ&state=x", "4/0AfJ"],
  ];
  for (const [form, text, secret] of cases) {
    const out = redactText(text);
    assert(!out.includes(secret), `${form}: ${out}`);
    assert(out.includes(REDACTED), `${form}: nothing masked in ${out}`);
  }
  // Harmless text stays as it is.
  assertEquals(redactText("connection c1 synced 3 events"), "connection c1 synced 3 events");
});

Deno.test("a field named message does not replace the rendered message", async () => {
  const lines: string[] = [];
  await setupLogging("info", (line) => lines.push(line));
  try {
    logger("test").warn("Rejected a notification: {message}", { message: "bad header" });
    logger("test").info("Rendered text", { message: "a field of the same name" });
  } finally {
    await teardownLogging();
  }
  const [first, second] = lines.map((line) => JSON.parse(line));
  assertEquals(first.message, "Rejected a notification: bad header");
  assertEquals(second.message, "Rendered text");
  assertEquals(second.fields?.message, "a field of the same name");
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
