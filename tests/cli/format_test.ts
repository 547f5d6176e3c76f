import { assertEquals } from "../support/assert.ts";
import { formatAge } from "../../src/cli/format.ts";

Deno.test("formatAge() says how long ago, in the largest unit that reads well", () => {
  const now = Date.parse("2026-03-01T12:00:00Z");
  const ago = (ms: number) => formatAge(new Date(now - ms), now);
  assertEquals(formatAge(null, now), "never");
  assertEquals(ago(45_000), "45s ago");
  assertEquals(ago(12 * 60_000), "12m ago");
  assertEquals(ago(3 * 3_600_000), "3h ago");
  assertEquals(ago(3 * 86_400_000), "3d ago");
  assertEquals(ago(-90_000), "in 90s");
});
