import { assert, assertEquals } from "../support/assert.ts";
import { installProcessGuards } from "../../src/daemon/process_guards.ts";
import { setupLogging, teardownLogging } from "../../src/log/setup.ts";
import { createMetrics } from "../../src/metrics/metrics.ts";
import { counterValue } from "../support/sync_harness.ts";

Deno.test("an unhandled rejection is logged and counted instead of killing the daemon", async () => {
  const lines: string[] = [];
  await setupLogging("info", (line) => lines.push(line));
  const metrics = createMetrics();
  const remove = installProcessGuards(metrics);
  try {
    Promise.reject(Object.assign(new Error("late deadline"), { code: "DEADLINE_EXCEEDED" }));
    await new Promise((resolve) => setTimeout(resolve, 20));
  } finally {
    remove();
    await teardownLogging();
  }
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
