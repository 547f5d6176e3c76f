import { assert, assertEquals, assertStringIncludes } from "../support/assert.ts";
import type { AuditTrail, LeaseChange } from "../../drills/chaos/audit.ts";
import {
  checkConvergence,
  checkDedupe,
  checkFailureAccounting,
  checkNoDrift,
  checkProcesses,
} from "../../drills/chaos/checks.ts";
import type { MirrorEvidence, ProcessEvidence } from "../../drills/chaos/evidence.ts";
import { failureIncrements } from "../../drills/chaos/log_lines.ts";
import { checkExclusiveSyncs, ownerPid } from "../../drills/chaos/overlap.ts";
import { FAULT_KINDS } from "../../drills/chaos/faults.ts";
import { createPrng } from "../../drills/chaos/prng.ts";
import type { LogLine } from "../../drills/drill/evidence.ts";
import type { Sample } from "../../testkit/prometheus_text.ts";

const CHAOS = new URL("../../drills/chaos.ts", import.meta.url).pathname;
const C1 = "00000000-0000-4000-8000-000000000001";
const CLOCK = { offsetMs: 0, uncertaintyMs: 1 };
const T0 = Date.parse("2025-01-01T00:00:00Z");

function mirror(mirrorLines: string[], providerLines: string[]): MirrorEvidence {
  return {
    connectionId: C1,
    kind: "google",
    calendar: "cal",
    mirror: mirrorLines,
    provider: providerLines,
  };
}

function proc(overrides: Partial<ProcessEvidence> & { pid: number }): ProcessEvidence {
  return {
    replica: `r${overrides.pid}`,
    killedAt: null,
    alive: true,
    health: 200,
    exitCode: 0,
    logs: [],
    metrics: [],
    ...overrides,
  };
}

function line(at: number, message: string, fields: Record<string, unknown> = {}): LogLine {
  return {
    time: new Date(at).toISOString(),
    level: "info",
    category: "calsync.sync",
    message,
    ...fields,
  };
}

const owner = (pid: number, claim = "abcdef01") => `host:${pid}/${claim}:${C1}`;
const lease = (at: number, oldOwner: string | null, newOwner: string | null, oldExpiresAt = 0) => ({
  connectionId: C1,
  at: T0 + at,
  oldOwner,
  newOwner,
  oldExpiresAt: T0 + oldExpiresAt,
});
const ended = (at: number) =>
  line(T0 + at, `Sync of connection ${C1} failed: database`, {
    connection_id: C1,
    provider: "google",
    kind: "database",
  });

Deno.test("createPrng() replays the same draws for the same seed", () => {
  const a = createPrng(42);
  const b = createPrng(42);
  const draws = (p: ReturnType<typeof createPrng>) => [p.next(), p.int(1, 6), p.pick(["x", "y"])];
  assertEquals(draws(a), draws(b));
  assert(createPrng(43).next() !== createPrng(42).next(), "another seed, other draws");
});

Deno.test("checkConvergence() fails on missing, undeleted and stale events", () => {
  assert(checkConvergence([mirror(["a|A|1", "b|B|1"], ["a|A|1", "b|B|1"])]).passed);
  const result = checkConvergence([
    mirror(["a|A|1", "b|B|1", "x|X|1"], ["a|A|2", "b|B|1", "c|C|1"]),
  ]);
  assertEquals(result.passed, false);
  assertStringIncludes(result.violations[0], "1 missing, 1 not deleted, 1 stale");
});

Deno.test("checkDedupe() fails when a key is processed twice or acknowledged without a key", () => {
  const clean: AuditTrail = {
    leases: [],
    keys: [{ key: "google:ch:5", connectionId: C1, txid: "10", at: T0 }],
    requests: [{ connectionId: C1, txid: "10", delta: 1 }, {
      connectionId: C1,
      txid: "11",
      delta: 1,
    }],
  };
  assert(checkDedupe(clean, ["google:ch:5"]).passed, "one key, one request");

  const twice = { ...clean, keys: [...clean.keys, { ...clean.keys[0], txid: "12" }] };
  assertStringIncludes(checkDedupe(twice, []).violations.join("\n"), "inserted 2 times");

  const double = {
    ...clean,
    requests: [...clean.requests, { connectionId: C1, txid: "10", delta: 1 }],
  };
  assertStringIncludes(checkDedupe(double, []).violations.join("\n"), "with 2 requests");

  assertStringIncludes(
    checkDedupe(clean, ["google:ch:7"]).violations.join("\n"),
    "acknowledged google:ch:7 has no key",
  );
});

Deno.test("checkExclusiveSyncs() fails when a claim replaces a lease that has not expired", () => {
  const leases: LeaseChange[] = [lease(0, null, owner(1)), lease(1_000, owner(1), owner(2), 5_000)];
  const result = checkExclusiveSyncs(leases, [proc({ pid: 1 }), proc({ pid: 2 })], CLOCK);
  assertEquals(result.passed, false);
  assertStringIncludes(result.violations[0], "lease ran 4000 ms more");
});

Deno.test("checkExclusiveSyncs() fails when the old run was still going after a takeover", () => {
  const leases = [lease(0, null, owner(1)), lease(6_000, owner(1), owner(2), 5_000)];
  const late = proc({ pid: 1, logs: [ended(7_500)] });
  const result = checkExclusiveSyncs(leases, [late, proc({ pid: 2 })], CLOCK);
  assertEquals(result.passed, false);
  assertStringIncludes(result.violations[0], "still syncing it 1500 ms after pid 2");

  // Ended before the takeover, or killed before it: no overlap.
  const early = proc({ pid: 1, logs: [ended(4_000)] });
  assert(checkExclusiveSyncs(leases, [early, proc({ pid: 2 })], CLOCK).passed);
  const killed = proc({ pid: 1, killedAt: T0 + 2_000, alive: false, metrics: null });
  assert(checkExclusiveSyncs(leases, [killed, proc({ pid: 2 })], CLOCK).passed);
});

Deno.test("checkExclusiveSyncs() does not blame a run for the end line of its successor", () => {
  // pid 1's first claim was a phantom (answer lost); its next claim's run ends at 9 s.
  const leases = [
    lease(0, null, owner(1, "aaaaaaaa")),
    lease(6_000, owner(1, "aaaaaaaa"), owner(2), 5_000),
    lease(7_000, owner(2), null),
    lease(8_000, null, owner(1, "bbbbbbbb")),
  ];
  const holder = proc({ pid: 1, logs: [ended(9_000)] });
  assert(checkExclusiveSyncs(leases, [holder, proc({ pid: 2 })], CLOCK).passed);
  assertEquals(ownerPid(owner(1234)), 1234);
});

Deno.test("checkProcesses() fails on a replica that died, is unhealthy or exits non-zero", () => {
  const killed = proc({ pid: 9, killedAt: T0, alive: false, exitCode: null, metrics: null });
  assert(checkProcesses([proc({ pid: 1 }), killed]).passed);
  const result = checkProcesses([
    proc({ pid: 1, alive: false, health: null, exitCode: null }),
    proc({ pid: 2, health: 503 }),
    proc({ pid: 3, exitCode: 1 }),
  ]);
  assertEquals(result.violations.length, 3);
});

Deno.test("checkFailureAccounting() fails when a failure has no line or no increment", () => {
  const sample = (provider: string, reason: string, value: number): Sample => ({
    name: "calendar_sync_failures_total",
    labels: { provider, reason },
    value,
  });
  const fields = {
    connection_id: C1,
    provider: "google",
    kind: "timeout",
    status: null,
    attempt: 1,
    backoff_until: null,
  };
  const logs = [
    line(T0, `Sync of connection ${C1} failed: timeout`, fields),
    line(T0, `Cannot record the failed sync of connection ${C1}: database error`, fields),
    {
      ...line(T0, "Cannot claim due connections; retrying in 100 ms"),
      category: "calsync.scheduler",
    },
  ];
  const counted = [
    sample("google", "timeout", 2),
    sample("google", "database", 1),
    sample("all", "database", 1),
  ];
  assert(checkFailureAccounting([proc({ pid: 1, logs, metrics: counted })]).passed);

  const unlogged = [...counted.slice(0, 2), sample("all", "database", 2)];
  const result = checkFailureAccounting([proc({ pid: 1, logs, metrics: unlogged })]);
  assertEquals(result.violations, ["r1 (pid 1) all/database: 1 from log lines, metric 2"]);
  // A killed process has no counters left to compare: it is skipped, not failed.
  assert(checkFailureAccounting([proc({ pid: 2, logs, metrics: null })]).passed);
  assertEquals(failureIncrements(line(T0, "Sync of connection x succeeded")), []);

  // A failed sync's line without the fields operators filter on is a violation too.
  const bare = [
    line(T0, `Sync of connection ${C1} failed: timeout`, { provider: "google", kind: "timeout" }),
  ];
  const incomplete = checkFailureAccounting([
    proc({ pid: 3, logs: bare, metrics: [sample("google", "timeout", 1)] }),
  ]);
  assertEquals(incomplete.violations, [
    `r3 (pid 3) "Sync of connection ${C1} failed: timeout" lacks connection_id, status, attempt, backoff_until`,
  ]);
});

Deno.test({
  name: "deno task chaos --duration 20 converges under every fault kind",
  async fn() {
    const seed = 20250607;
    const result = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", CHAOS, "--duration", "20", "--seed", String(seed)],
      env: {
        DATABASE_URL: Deno.env.get("TEST_DATABASE_URL") ??
          "postgres://postgres@127.0.0.1:5432/postgres",
        NO_COLOR: "1",
      },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(result.stdout);
    const stderr = new TextDecoder().decode(result.stderr);
    assertEquals(result.code, 0, `chaos soak failed:\n${stdout}\n${stderr.slice(-3_000)}`);
    assertStringIncludes(stdout, `seed: ${seed}`);
    assertStringIncludes(stdout, `replay: deno task chaos --seed ${seed} --duration 20`);
    const faults = stdout.match(/^faults: \d+ injected: (.*)$/m)?.[1] ?? "";
    const injected = new Map(faults.split(" ").map((pair) => pair.split("=") as [string, string]));
    for (const kind of FAULT_KINDS) {
      assert(Number(injected.get(kind)) > 0, `no ${kind} fault was injected: ${faults}`);
    }
    assert(/^converged: [\d.]+ s after injection stopped$/m.test(stdout), "converge time");
    assert(/^syncs: [1-9]\d* succeeded/m.test(stdout), "syncs ran");
    assert(/^notifications: [1-9]\d* delivery attempts/m.test(stdout), "pushes were delivered");
    const checks = stdout.split("\n").filter((l) => /^(PASS|FAIL) {2}/.test(l));
    assertEquals(checks.length, 6, stdout);
    assertEquals(checks.filter((l) => l.startsWith("FAIL")), []);
    assertStringIncludes(stdout, "RESULT: PASS (6/6 checks passed)");
    assert(
      /PASS {2}final reconciliation repaired nothing.*32\/32 connections verified, 0 drift/
        .test(stdout),
      "the final reconciliation verified every connection",
    );
  },
});

Deno.test("the final reconciliation check fails on repairs, unverified connections, lost metrics", () => {
  const clean = {
    connections: 4,
    verified: 4,
    repairsBefore: 2,
    repairsAfter: 2,
    scraped: true,
  };
  assertEquals(checkNoDrift(clean).passed, true);
  assertEquals(checkNoDrift({ ...clean, repairsAfter: 3 }).violations, [
    "1 drift repairs (calendar_sync_drift_repairs_total)",
  ]);
  assertEquals(checkNoDrift({ ...clean, verified: 3 }).passed, false);
  assertEquals(checkNoDrift({ ...clean, scraped: false }).passed, false);
});
