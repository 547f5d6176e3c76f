import { assertEquals } from "../support/assert.ts";
import { keyedSlots, mailboxSlots } from "../../src/lanes/mailbox_slots.ts";

Deno.test("a mailbox runs at most its share of syncs at once; others are not held", async () => {
  const slots = mailboxSlots(4);
  let running = 0;
  let peak = 0;
  const releases: (() => void)[] = [];
  const task = () =>
    new Promise<void>((resolve) => {
      running++;
      peak = Math.max(peak, running);
      releases.push(() => {
        running--;
        resolve();
      });
    });
  const same = [1, 2, 3, 4].map(() => slots.run("box", task));
  const other = slots.run("other", () => Promise.resolve("free"));
  assertEquals(await other, "free");
  assertEquals([running, slots.load("box")], [2, 4]);
  while (releases.length > 0) {
    releases.shift()!();
    await Promise.resolve();
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  await Promise.all(same);
  assertEquals([peak, slots.load("box")], [2, 0]);
});

Deno.test("a failing task gives its slot back", async () => {
  const slots = keyedSlots(1);
  const failed = slots.run("k", () => Promise.reject(new Error("boom"))).catch((e) => e.message);
  assertEquals(await failed, "boom");
  assertEquals(await slots.run("k", () => Promise.resolve(7)), 7);
});
