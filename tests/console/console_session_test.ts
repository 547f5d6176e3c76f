import { assert, assertEquals } from "../support/assert.ts";
import {
  createSessionKeeper,
  sessionKeyFromToken,
  sessionLabel,
} from "../../src/console/console_session.ts";

const TOKEN = "session-test-token-0123456789abcdef";

Deno.test("a session verifies until it expires, and not after its signature is touched", async () => {
  const keeper = createSessionKeeper(sessionKeyFromToken(TOKEN), 60_000);
  const { cookie, session } = await keeper.issue(1_000);
  assertEquals((await keeper.verify(cookie, 2_000))?.id, session.id);
  assertEquals(await keeper.verify(cookie, 61_000), null);
  const [id, expiry, signature] = cookie.split(".");
  // A later expiry with the old signature, or a flipped character, is refused.
  assertEquals(await keeper.verify(`${id}.${Number(expiry) + 1}.${signature}`, 2_000), null);
  const flipped = signature.slice(0, -1) + (signature.endsWith("A") ? "B" : "A");
  assertEquals(await keeper.verify(`${id}.${expiry}.${flipped}`, 2_000), null);
  assertEquals(await keeper.verify(undefined, 2_000), null);
  assertEquals(await keeper.verify("garbage", 2_000), null);
  assert(!cookie.includes(TOKEN));
});

Deno.test("another admin token's keeper refuses the session; revoking ends it", async () => {
  const keeper = createSessionKeeper(sessionKeyFromToken(TOKEN), 60_000);
  const other = createSessionKeeper(sessionKeyFromToken(`${TOKEN}-rotated`), 60_000);
  const { cookie, session } = await keeper.issue(1_000);
  assertEquals(await other.verify(cookie, 2_000), null);
  keeper.revoke(session);
  assertEquals(await keeper.verify(cookie, 2_000), null);
});

Deno.test("the CSRF token is the session's own, and sessionLabel hides the id's rest", async () => {
  const keeper = createSessionKeeper(sessionKeyFromToken(TOKEN), 60_000);
  const a = (await keeper.issue(0)).session;
  const b = (await keeper.issue(0)).session;
  assert(keeper.csrfMatches(a, a.csrf));
  assert(!keeper.csrfMatches(a, b.csrf));
  assert(!keeper.csrfMatches(a, undefined));
  assert(!keeper.csrfMatches(a, ""));
  assertEquals(sessionLabel(a), `console:${a.id.slice(0, 8)}`);
});
