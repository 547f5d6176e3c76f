import { assertEquals } from "../support/assert.ts";
import { guardVerdict } from "../../src/sync/deletion_guard.ts";

const DEFAULTS = { percent: 50, min: 20 };

Deno.test("deleting more than half of the rows and more than 20 rows is held", () => {
  assertEquals(
    guardVerdict({ deleting: 21, total: 40, listed: null, holding: false }, DEFAULTS),
    "threshold",
  );
});

Deno.test("either threshold alone lets the deletions through", () => {
  // More than 20 rows, but not more than half.
  assertEquals(
    guardVerdict({ deleting: 50, total: 100, listed: null, holding: false }, DEFAULTS),
    null,
  );
  // More than half, but only 20 rows.
  assertEquals(
    guardVerdict({ deleting: 20, total: 20, listed: null, holding: false }, DEFAULTS),
    null,
  );
});

Deno.test("an empty full listing for a calendar that had rows is suspect whatever its size", () => {
  assertEquals(
    guardVerdict({ deleting: 3, total: 3, listed: 0, holding: false }, DEFAULTS),
    "empty_listing",
  );
  assertEquals(guardVerdict({ deleting: 3, total: 5, listed: 2, holding: false }, DEFAULTS), null);
});

Deno.test("once a run holds, its later deletions are held too; nothing to delete is never held", () => {
  assertEquals(
    guardVerdict({ deleting: 1, total: 100, listed: null, holding: true }, DEFAULTS),
    "run_holding",
  );
  assertEquals(guardVerdict({ deleting: 0, total: 0, listed: 0, holding: true }, DEFAULTS), null);
});

Deno.test("SYNC_DELETE_GUARD_PERCENT=100 disables the threshold, 0/0 holds every deletion", () => {
  assertEquals(
    guardVerdict({ deleting: 100, total: 100, listed: null, holding: false }, {
      percent: 100,
      min: 0,
    }),
    null,
  );
  assertEquals(
    guardVerdict({ deleting: 1, total: 100, listed: null, holding: false }, { percent: 0, min: 0 }),
    "threshold",
  );
});
