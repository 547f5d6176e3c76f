import { hasWrk, type LoadChannel, runLoad } from "../../bench/load_generator.ts";
import { startBareServer } from "../../bench/bare_server.ts";
import { assert, assertEquals } from "../support/assert.ts";

Deno.test("wrk load cycles through more channels than one Lua function can hold constants", async (t) => {
  if (!(await hasWrk())) {
    await t.step({ name: "wrk is not installed: skipped", ignore: true, fn() {} });
    return;
  }
  // 70,000 rows of four distinct strings: far past LuaJIT's 65,536 constants per function.
  const channels: LoadChannel[] = Array.from({ length: 70_000 }, (_, i) => ({
    channelId: `channel-${i}`,
    token: `token-${i}`,
    resourceId: `resource-${i}`,
    uri: `https://www.googleapis.com/calendar/v3/calendars/calendar-${i}/events?alt=json`,
  }));
  const server = await startBareServer();
  try {
    const result = await runLoad(
      { url: server.url, channels, concurrency: 2, seconds: 1, run: 1 },
      true,
    );
    assertEquals(result.tool, "wrk");
    assert(result.requests > 0, JSON.stringify(result));
    assertEquals(result.share2xx, 1);
  } finally {
    await server.stop();
  }
});
