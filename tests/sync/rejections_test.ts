import { assertEquals, assertThrows } from "../support/assert.ts";
import { rejectionStep } from "../../src/sync/rejections.ts";

Deno.test("rejections count up while the streak is unbroken, then drop the cursor, then disable", () => {
  let history: { errorCount: number; lastError: Record<string, unknown> | null } = {
    errorCount: 0,
    lastError: null,
  };
  const steps = [];
  for (let i = 0; i < 4; i++) {
    const step = rejectionStep(history, 3);
    steps.push(step);
    history = {
      errorCount: history.errorCount + 1,
      lastError: {
        kind: "provider_rejected",
        rejections: step.rejections,
        full_sync: step.fullSync,
      },
    };
  }
  assertEquals(steps.map((s) => [s.rejections, s.fullSync, s.disable]), [
    [1, false, false],
    [2, false, false],
    [3, true, false],
    [4, false, true],
  ]);
});

Deno.test("another kind of failure or a success in between starts the count again", () => {
  const afterOutage = { errorCount: 3, lastError: { kind: "provider_unavailable" } };
  assertEquals(rejectionStep(afterOutage, 5).rejections, 1);
  const afterSuccess = { errorCount: 0, lastError: { kind: "provider_rejected", rejections: 4 } };
  assertEquals(rejectionStep(afterSuccess, 5).rejections, 1);
});

Deno.test("rejections stored before the counter existed count as one", () => {
  assertEquals(
    rejectionStep({ errorCount: 2, lastError: { kind: "provider_rejected" } }, 5).rejections,
    2,
  );
});

Deno.test("SYNC_MAX_REJECTIONS=1 drops the cursor at the first rejection", () => {
  assertEquals(rejectionStep({ errorCount: 0, lastError: null }, 1).fullSync, true);
  assertThrows(
    () => rejectionStep({ errorCount: 0, lastError: null }, 0),
    RangeError,
    "maxRejections",
  );
});
