/**
 * @module Ceiling (b) of webhook ingestion: a bare `Deno.serve` that answers 202 and does nothing
 * else, run as its own process like the daemon. Run directly, it prints its port as JSON.
 */

/** A running bare server subprocess. */
export type BareServer = { url: string; stop(): Promise<void> };

/** Starts this file as a subprocess and resolves once it listens. */
export async function startBareServer(): Promise<BareServer> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net=127.0.0.1", new URL(import.meta.url).pathname],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const { value } = await reader.read();
  const port = Number(JSON.parse(value ?? "{}").port);
  if (!Number.isInteger(port) || port <= 0) {
    child.kill("SIGKILL");
    throw new Error(`Bare server did not report a port: ${value}`);
  }
  return {
    url: `http://127.0.0.1:${port}/webhooks/google`,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
      await reader.cancel().catch(() => {});
    },
  };
}

if (import.meta.main) {
  Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: ({ port }) => console.log(JSON.stringify({ port })),
  }, () => new Response(null, { status: 202 }));
  Deno.addSignalListener("SIGTERM", () => Deno.exit(0));
}
