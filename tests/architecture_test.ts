/**
 * The README's "map of the code", enforced: every import arrow points one way (vocabulary <-
 * adapters and storage <- sync and webhooks <- wiring <- entry points). A new folder must be
 * placed on the map before it may be imported.
 */
import { assertEquals } from "./support/assert.ts";
import { dirname, relative, resolve } from "node:path";

const ROOT = resolve(new URL("..", import.meta.url).pathname);

const VOCABULARY = [
  "src/core",
  "src/failures",
  "src/crypto",
  "src/config",
  "src/log",
  "src/metrics",
];
const ADAPTERS = ["src/storage", "src/providers", "src/http"];
const ENGINE = [
  "src/sync",
  "src/scheduler",
  "src/channels",
  "src/webhooks",
  "src/maintenance",
  "src/accounts",
  "src/feed",
  // Per-provider lanes: breaker, drain and quota; injected into the scheduler and sync by daemon.
  "src/lanes",
];
// The interfaces an embedding application or an operator's browser uses.
const FRONT = ["src/api", "src/console"];
const ALL_SRC = [...VOCABULARY, ...ADAPTERS, ...ENGINE, ...FRONT, "src/daemon", "src/cli"];

/** What each area may import (besides itself and npm/node packages). */
export const ALLOWED: Record<string, readonly string[]> = {
  "src/core": [],
  "src/failures": ["src/core"],
  "src/crypto": ["src/core"],
  "src/config": ["src/core", "src/crypto"],
  "src/log": ["src/core"],
  "src/metrics": ["src/core"],
  "src/storage": VOCABULARY,
  "src/providers": VOCABULARY,
  "src/http": VOCABULARY,
  "src/sync": [...VOCABULARY, "src/storage", "src/providers"],
  "src/scheduler": [...VOCABULARY, "src/storage"],
  "src/channels": [...VOCABULARY, "src/storage", "src/providers"],
  "src/webhooks": [...VOCABULARY, "src/storage", "src/http"],
  "src/maintenance": [...VOCABULARY, "src/storage", "src/channels"],
  "src/lanes": [...VOCABULARY, "src/storage"],
  "src/accounts": [...VOCABULARY, "src/storage", "src/providers", "src/channels"],
  "src/feed": [...VOCABULARY, "src/storage", "src/http"],
  "src/api": [...VOCABULARY, ...ADAPTERS, ...ENGINE],
  "src/console": [...VOCABULARY, ...ADAPTERS, ...ENGINE, "src/api"],
  "src/daemon": [...VOCABULARY, ...ADAPTERS, ...ENGINE, ...FRONT],
  "src/cli": ALL_SRC.filter((area) => area !== "src/cli"),
  "main.ts": ALL_SRC,
  "testkit": ALL_SRC,
  "drills": [...ALL_SRC, "testkit"],
  "bench": [...ALL_SRC, "testkit"],
  "deploy": ["src/config"],
};

// The drill (and with it the fakes) is loaded only when `calsync drill` runs.
const DYNAMIC_ONLY: Record<string, readonly string[]> = { "main.ts": ["drills"] };

function areaOf(path: string): string {
  const parts = relative(ROOT, path).split("/");
  if (parts[0] === "src") return parts.length > 2 ? `src/${parts[1]}` : parts.join("/");
  return parts.length === 1 ? parts[0] : parts[0];
}

function* sourceFiles(dir: string): Generator<string> {
  for (const entry of Deno.readDirSync(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) yield* sourceFiles(path);
    else if (path.endsWith(".ts")) yield path;
  }
}

type Arrow = { file: string; target: string; dynamic: boolean };

function arrowsOf(file: string): Arrow[] {
  const text = Deno.readTextFileSync(file);
  const arrows: Arrow[] = [];
  for (const match of text.matchAll(/(from|import\s*\(|import)\s*"(\.{1,2}\/[^"]+)"/g)) {
    const target = resolve(dirname(file), match[2]);
    arrows.push({ file, target, dynamic: match[1].includes("(") });
  }
  return arrows;
}

/** Every import that crosses a boundary the map forbids, as "from -> to (file)". */
export function forbiddenArrows(files: Iterable<string>): string[] {
  const problems: string[] = [];
  for (const file of files) {
    const from = areaOf(file);
    const allowed = ALLOWED[from];
    if (!allowed) {
      problems.push(`${relative(ROOT, file)}: area "${from}" is not on the map`);
      continue;
    }
    for (const arrow of arrowsOf(file)) {
      const to = areaOf(arrow.target);
      if (to === from) continue;
      const dynamicOk = arrow.dynamic && (DYNAMIC_ONLY[from] ?? []).includes(to);
      if (!allowed.includes(to) && !dynamicOk) {
        problems.push(`${from} -> ${to} (${relative(ROOT, file)})`);
      }
    }
  }
  return problems;
}

function productionFiles(): string[] {
  const files = [`${ROOT}/main.ts`];
  for (const dir of ["src", "testkit", "drills", "bench", "deploy"]) {
    files.push(...sourceFiles(`${ROOT}/${dir}`));
  }
  return files;
}

Deno.test("every import arrow follows the README's map of the code", () => {
  assertEquals(forbiddenArrows(productionFiles()), []);
});

Deno.test("the map check catches an arrow that runs back up", () => {
  const scratch = Deno.makeTempDirSync({ dir: `${ROOT}/src/providers` });
  try {
    Deno.writeTextFileSync(`${scratch}/bad.ts`, 'import "../../storage/client.ts";\n');
    Deno.writeTextFileSync(`${scratch}/worse.ts`, 'import "../../daemon/serve.ts";\n');
    const problems = forbiddenArrows(sourceFiles(scratch));
    assertEquals(problems.length, 2, problems.join("\n"));
  } finally {
    Deno.removeSync(scratch, { recursive: true });
  }
});

Deno.test("main.ts loads the drill only on demand", () => {
  const problems = forbiddenArrows([`${ROOT}/main.ts`]);
  assertEquals(problems, []);
  const text = Deno.readTextFileSync(`${ROOT}/main.ts`);
  assertEquals(/from\s+"\.\/drills\//.test(text), false, "main.ts imports drills/ statically");
});
