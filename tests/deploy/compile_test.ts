import { assert, assertEquals } from "../support/assert.ts";
import { compileArgs, V8_FLAGS } from "../../deploy/compile.ts";
import { CONFIG_VARIABLES } from "../../src/config/config.ts";

Deno.test("compileArgs() bakes in named env vars and no blanket permissions", () => {
  const args = compileArgs({});
  assert(!args.includes("-A") && !args.includes("--allow-all"), args.join(" "));
  const env = args.find((a) => a.startsWith("--allow-env="))!.slice("--allow-env=".length).split(
    ",",
  );
  assertEquals(env.sort(), [...CONFIG_VARIABLES, "PG*"].sort());
  assert(!args.includes("--allow-run") && !args.includes("--allow-write"), "serve needs neither");
  assertEquals(args.slice(args.indexOf("--include"), args.indexOf("--include") + 2), [
    "--include",
    "migrations",
  ]);
  assertEquals(args.at(-1), "main.ts");
  assert(args.includes(`--v8-flags=${V8_FLAGS}`), "the memory-lean V8 flags are not baked in");
});

Deno.test("compileArgs() narrows the network and opts into the drill's permissions on request", () => {
  const args = compileArgs({
    CALSYNC_ALLOW_NET: "graph.microsoft.com,db:5432",
    CALSYNC_COMPILE_WITH_DRILL: "1",
  });
  assert(args.includes("--allow-net=graph.microsoft.com,db:5432"));
  assert(args.includes("--allow-run") && args.includes("--allow-write"));
});

Deno.test("compileArgs() names hosts and paths by default: no blanket --allow-net or --allow-read", () => {
  const args = compileArgs({});
  assert(!args.includes("--allow-net") && !args.includes("--allow-read"), args.join(" "));
  const net = args.find((a) => a.startsWith("--allow-net="))!.split("=")[1].split(",");
  for (const host of ["www.googleapis.com:443", "graph.microsoft.com:443", "127.0.0.1:5432"]) {
    assert(net.includes(host), `${host} missing from ${net}`);
  }
  const read = args.find((a) => a.startsWith("--allow-read="))!.split("=")[1].split(",");
  assert(read.some((path) => path.endsWith("/migrations")), read.join(","));
  assert(read.includes("/run/credentials"), read.join(","));
  assert(!read.includes("/"), "the whole file system");
  const narrowed = compileArgs({ CALSYNC_ALLOW_READ: "/opt/calsync" });
  assert(narrowed.includes("--allow-read=/opt/calsync"));
});
