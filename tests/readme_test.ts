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

Deno.test("README's configuration table lists each variable once", () => {
  const section = README.slice(README.indexOf("## Configuration"), README.indexOf("## Operating"));
  const names = [...section.matchAll(/^\| (`[A-Z][A-Z0-9_]+`[^|]*?)\s+\|/gm)].map((m) => m[1]);
  const repeated = names.filter((name, i) => names.indexOf(name) !== i);
  assert(names.length >= 40, `parsed ${names.length} rows`);
  assert(repeated.length === 0, `listed twice: ${repeated.join(", ")}`);
});
