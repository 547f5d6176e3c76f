import { assertEquals } from "../support/assert.ts";
import {
  effectiveRate,
  QUOTA_SHAPE,
  type QuotaSettings,
  refill,
  slowedRate,
  take,
} from "../../src/lanes/token_bucket.ts";

const QUOTA: QuotaSettings = { perMinute: 6_000, ...QUOTA_SHAPE };

Deno.test("the bucket refills at the rate and holds at most its burst", () => {
  assertEquals(refill({ tokens: 0, at: 0 }, 6_000, 1_000, 10).tokens, 100);
  assertEquals(refill({ tokens: 0, at: 0 }, 6_000, 3_600_000, 10).tokens, 1_000);
});

Deno.test("take grants whole tokens only, never more than there are", () => {
  const first = take({ tokens: 2.5, at: 0 }, 10, 6_000, 0, 10);
  assertEquals([first.granted, first.bucket.tokens], [2, 0.5]);
  const none = take(first.bucket, 10, 6_000, 0, 10);
  assertEquals(none.granted, 0);
});

Deno.test("a rate limit halves the rate in force, which grows back 10 % of the quota per minute", () => {
  const slowed = slowedRate({ basePerMinute: null, limitedAt: null }, 0, QUOTA);
  assertEquals(effectiveRate(slowed, 0, QUOTA), 3_000);
  assertEquals(effectiveRate(slowed, 60_000, QUOTA), 3_600);
  assertEquals(effectiveRate(slowed, 3_600_000, QUOTA), 6_000);
  const again = slowedRate(slowed, 60_000, QUOTA);
  assertEquals(effectiveRate(again, 60_000, QUOTA), 1_800);
});

Deno.test("repeated rate limits never push the rate below the floor", () => {
  let state = { basePerMinute: null as number | null, limitedAt: null as number | null };
  for (let i = 0; i < 20; i++) state = slowedRate(state, 0, QUOTA);
  assertEquals(effectiveRate(state, 0, QUOTA), 300);
});
