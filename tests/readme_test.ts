import { assert } from "./support/assert.ts";
import { CONFIG_VARIABLES } from "../src/config/config.ts";
import { USAGE } from "../src/cli/usage.ts";

const README = await Deno.readTextFile(new URL("../README.md", import.meta.url));

Deno.test("README's configuration table documents every variable calsync reads", () => {
  const missing = CONFIG_VARIABLES.filter((name) =>
    !README.includes(`| \`${name}\``) && !README.includes(`\`${name}\` /`) &&
    !README.includes(`/ \`${name}\``)
  );
  assert(missing.length === 0, `undocumented: ${missing.join(", ")}`);
});

Deno.test("README's CLI table lists every command of the usage text", () => {
  const commands = [...USAGE.matchAll(/^ {2}calsync ([a-z]+(?: [a-z-]+)?)/gm)]
    .map((m) => m[1].replace(/^\[?serve\]?$/, "serve"))
    .filter((c) => !c.startsWith("["));
  const missing = commands.filter((command) => !README.includes(`\`${command}`));
  assert(commands.length >= 10, `parsed ${commands.length} commands`);
  assert(missing.length === 0, `not in README: ${missing.join(", ")}`);
});
