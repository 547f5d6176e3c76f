import { assert, assertEquals, waitFor } from "../support/assert.ts";
import { installProcessGuards } from "../../src/daemon/process_guards.ts";
import { setupLogging, teardownLogging } from "../../src/log/setup.ts";
import { createMetrics } from "../../src/metrics/metrics.ts";
import { counterValue } from "../support/sync_harness.ts";

/** Leaves `reason` as an unhandled rejection under the guards; what they logged and counted. */
async function underGuards(reason: Error) {
  const lines: string[] = [];
  await setupLogging("info", (line) => lines.push(line));
  const metrics = createMetrics();
  const remove = installProcessGuards(metrics);
  try {
    Promise.reject(reason);
    await waitFor(() => lines.length > 0, { what: "the guard's log line" });
  } finally {
    remove();
    await teardownLogging();
  }
  return { lines, metrics };
}

Deno.test("an unhandled rejection is logged and counted instead of killing the daemon", async () => {
  const { lines, metrics } = await underGuards(
    Object.assign(new Error("late deadline"), { code: "DEADLINE_EXCEEDED" }),
  );
  assertEquals(
    await counterValue(metrics, "calendar_scheduler_errors_total", {
      operation: "unhandled_rejection",
    }),
    1,
  );
  const line = JSON.parse(lines.find((l) => l.includes("Unhandled promise rejection"))!);
  assertEquals([line.level, line.error.message, line.error.code], [
    "error",
    "late deadline",
    "DEADLINE_EXCEEDED",
  ]);
  assert(line.time && line.category === "calsync.process");
});

Deno.test("a buffered write that raced a closed database connection is a counted warning", async () => {
  const { lines, metrics } = await underGuards(
    Object.assign(new Error("This socket has been ended by the other party"), { code: "EPIPE" }),
  );
  const count = (operation: string) =>
    counterValue(metrics, "calendar_scheduler_errors_total", { operation });
  assertEquals([await count("stray_socket_write"), await count("unhandled_rejection")], [1, 0]);
  const line = JSON.parse(lines[0]);
  assertEquals([line.level, line.error.code], ["warning", "EPIPE"]);
  assert(line.message.includes("database connection the server had closed"));
});
