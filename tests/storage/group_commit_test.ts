import { assertEquals, assertRejects, assertThrows } from "../support/assert.ts";
import { createGroupCommit } from "../../src/storage/group_commit.ts";

/** A flush whose batches the test releases one at a time. */
function heldFlush() {
  const batches: number[][] = [];
  const releases: (() => void)[] = [];
  const flush = (items: number[]) => {
    batches.push(items);
    return new Promise<number[]>((resolve) =>
      releases.push(() => resolve(items.map((i) => i * 10)))
    );
  };
  return { batches, releases, flush };
}

Deno.test("a call alone goes out at once; calls made meanwhile share the next batch", async () => {
  const held = heldFlush();
  const group = createGroupCommit(held.flush, { maxBatch: 10 });
  const first = group.submit(1);
  assertEquals(held.batches, [[1]]);
  const later = [group.submit(2), group.submit(3), group.submit(4)];
  assertEquals(held.batches, [[1]], "nothing more goes out while a batch is in flight");
  held.releases[0]();
  assertEquals(await first, 10);
  await Promise.resolve();
  assertEquals(held.batches, [[1], [2, 3, 4]]);
  held.releases[1]();
  assertEquals(await Promise.all(later), [20, 30, 40]);
});

Deno.test("batches hold at most maxBatch items, in order", async () => {
  const held = heldFlush();
  const group = createGroupCommit(held.flush, { maxBatch: 2 });
  const all = [1, 2, 3, 4, 5].map((i) => group.submit(i));
  for (let i = 0; i < 3; i++) {
    while (held.releases.length <= i) {
      await new Promise((resolve) => queueMicrotask(() => resolve(0)));
    }
    held.releases[i]();
  }
  assertEquals(await Promise.all(all), [10, 20, 30, 40, 50]);
  assertEquals(held.batches, [[1], [2, 3], [4, 5]]);
});

Deno.test("a failed batch rejects each of its calls, and the next batch still goes out", async () => {
  let calls = 0;
  const group = createGroupCommit<number, number>((items) => {
    calls++;
    return calls === 1 ? Promise.reject(new Error("database down")) : Promise.resolve(items);
  }, { maxBatch: 10 });
  const failed = group.submit(1);
  const next = group.submit(2);
  await assertRejects(() => failed, Error, "database down");
  assertEquals(await next, 2);
});

Deno.test("a flush that returns the wrong number of results rejects its batch", async () => {
  const group = createGroupCommit<number, number>(() => Promise.resolve([]), { maxBatch: 4 });
  await assertRejects(() => group.submit(1), Error, "0 results for 1 items");
});

Deno.test("createGroupCommit() refuses a maxBatch below 1", () => {
  assertThrows(() => createGroupCommit(() => Promise.resolve([]), { maxBatch: 0 }), RangeError);
});
