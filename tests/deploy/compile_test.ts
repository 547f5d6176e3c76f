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
