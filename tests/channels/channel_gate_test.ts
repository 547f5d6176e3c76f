/**
 * Channel calls go through the provider's gate as syncs do: they spend its quota, a rate limit
 * slows it, a provider-wide failure counts toward its breaker, and while the breaker is open no
 * channel work is claimed and nothing is backed off.
 */
import type { BreakerSettings } from "../../src/lanes/circuit_breaker.ts";
import { meteredFetch } from "../../src/lanes/metered_fetch.ts";
import { createProviderGate } from "../../src/lanes/provider_gate.ts";
import type { ProviderKind } from "../../src/core/provider_kind.ts";
import { claimConnectionsForChannelWork } from "../../src/storage/connections.ts";
import { listConnectionChannels } from "../../src/storage/webhook_channels.ts";
import { type FakeGoogle, startFakeGoogle } from "../../testkit/fake_google.ts";
import { assertEquals } from "../support/assert.ts";
import { only } from "../support/channel_rows.ts";
import { type ChannelFixture, channelFixture } from "../support/channel_fixture.ts";

const REFRESH_TOKEN = "1//0g-refresh-token";

// One failing connection is enough to open it, so a single channel call shows the behaviour.
const BREAKER: BreakerSettings = {
  windowMs: 60_000,
  failureRatio: 0.5,
  minRequests: 1,
  minConnections: 1,
  probeIntervalMs: 60_000,
  probeMaxMs: 600_000,
  drainStepMs: 1,
};

function googleChannels(): Promise<ChannelFixture<FakeGoogle>> {
  return channelFixture("google", {
    fake: () => startFakeGoogle({ refreshTokens: [REFRESH_TOKEN], pushRetryBaseMs: 20 }),
    env: (google) => ({ GOOGLE_API_BASE_URL: google.baseUrl, GOOGLE_TOKEN_URL: google.tokenUrl }),
    publicUrl: (serverUrl) => serverUrl,
    refreshToken: REFRESH_TOKEN,
  });
}

function gateFor(fx: ChannelFixture<FakeGoogle>) {
  return createProviderGate({
    sql: fx.db.sql,
    metrics: fx.server.metrics,
    owner: "test",
    kinds: ["google", "microsoft"],
    breaker: BREAKER,
    quota: {},
    probeLeaseMs: 30_000,
    refreshMs: 0,
  });
}

async function breakerState(fx: ChannelFixture<FakeGoogle>): Promise<string | undefined> {
  const [row] = await fx.db.sql<{ state: string }[]>`
    select state from provider_health where provider = 'google'`;
  return row?.state;
}

Deno.test("a provider-wide failure of a channel call opens the breaker and leaves the row without backoff", async () => {
  await using fx = await googleChannels();
  const main = await fx.connection("primary");
  const gate = gateFor(fx);
  await gate.admit("google", { running: 0, size: 4 });
  fx.fake.setFault({ kind: "status", status: 503 }, { target: "push", times: 1 });
  await fx.pass({ gate });
  const row = only(await listConnectionChannels(fx.db.sql, main));
  assertEquals([row.status, row.error_count], ["creating", 0]);
  assertEquals(await breakerState(fx), "open");
  // The row stays due, but nothing is claimed while the breaker is open.
  assertEquals(await fx.pass({ gate }), { connections: 0 });

  await fx.db.sql`update provider_health set state = 'closed' where provider = 'google'`;
  assertEquals(await fx.pass({ gate }), { connections: 1 });
  assertEquals(only(await listConnectionChannels(fx.db.sql, main)).status, "active");
});

Deno.test("connection removal still claims its connection while the breaker is open", async () => {
  await using fx = await googleChannels();
  const main = await fx.connection("primary");
  await fx.db.sql`insert into provider_health (provider, state) values ('google', 'open')
    on conflict (provider) do update set state = 'open'`;
  assertEquals(await fx.pass(), { connections: 0 });
  const claimed = await claimConnectionsForChannelWork(fx.db.sql, {
    limit: 1,
    leaseMs: 10_000,
    ownerPrefix: "remove",
    allowlist: null,
    connectionId: main,
  });
  assertEquals(claimed.map((c) => c.id), [main]);
});

Deno.test("channel calls spend the provider's quota and a 429 slows it", async () => {
  await using fx = await googleChannels();
  const main = await fx.connection("primary");
  const spent: ProviderKind[] = [];
  const limited: ProviderKind[] = [];
  const meter = {
    spend: (kind: ProviderKind) => void spent.push(kind),
    rateLimited: (kind: ProviderKind) => void limited.push(kind),
  };
  const metered = (kind: ProviderKind, f: typeof fetch) => meteredFetch(meter, kind, f);
  fx.fake.setFault({ kind: "status", status: 429, retryAfter: "1" }, {
    target: "push",
    times: 1,
  });
  await fx.pass({ meter: metered });
  assertEquals([spent, limited], [["google"], ["google"]]);
  const row = only(await listConnectionChannels(fx.db.sql, main));
  assertEquals(row.error_count, 1, "a rate limit is the connection's to back off, too");
});
