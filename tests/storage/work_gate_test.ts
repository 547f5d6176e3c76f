import { DatabaseDeadlineError, DatabaseQueueFullError } from "../../src/core/errors.ts";
import { createWorkGate, type ShedReason } from "../../src/storage/work_gate.ts";
import { assert, assertEquals, assertRejects } from "../support/assert.ts";

Deno.test("WorkGate sheds work beyond its queue at once, and queued work at its deadline", async () => {
  const shed: ShedReason[] = [];
  const gate = createWorkGate({ maxConcurrent: 1, maxQueued: 1, onShed: (r) => shed.push(r) });
  const release = Promise.withResolvers<string>();
  const running = gate.run("first", 5_000, () => release.promise);
  const queued = gate.run("second", 50, () => Promise.resolve("never"));
  await assertRejects(
    () => gate.run("third", 5_000, () => Promise.resolve("x")),
    DatabaseQueueFullError,
  );
  await assertRejects(() => queued, DatabaseDeadlineError);
  assertEquals(shed, ["queue_full", "deadline"]);
  release.resolve("done");
  assertEquals(await running, "done");
});

Deno.test("WorkGate aborts work at its deadline and keeps a result that settles within the grace", async () => {
  const gate = createWorkGate({ maxConcurrent: 1, maxQueued: 0, graceMs: 5_000 });
  let aborted = false;
  const result = await gate.run(
    "late commit",
    20,
    ({ signal }) =>
      new Promise<string>((resolve) => {
        signal.addEventListener("abort", () => {
          aborted = true;
          resolve("committed");
        });
      }),
  );
  assert(aborted);
  assertEquals(result, "committed");
  // The slot is free again.
  assertEquals(await gate.run("next", 1_000, () => Promise.resolve(1)), 1);
});

Deno.test("WorkGate turns work rejected after its abort into a deadline error", async () => {
  const gate = createWorkGate({ maxConcurrent: 1, maxQueued: 0 });
  await assertRejects(
    () =>
      gate.run("cancelled", 20, ({ signal }) =>
        new Promise((_, reject) => {
          signal.addEventListener("abort", () => reject(new Error("57014")));
        })),
    DatabaseDeadlineError,
  );
});

Deno.test("WorkGate gives up the slot of a statement that never settles after abandonAfterMs", async () => {
  const gate = createWorkGate({ maxConcurrent: 1, maxQueued: 1, graceMs: 10, abandonAfterMs: 60 });
  const hung = new Promise<string>(() => {});
  await assertRejects(() => gate.run("hung", 20, () => hung), DatabaseDeadlineError);
  // Queued behind the hung statement, this one gets the slot once it is abandoned.
  assertEquals(await gate.run("next", 5_000, () => Promise.resolve("ran")), "ran");
});
