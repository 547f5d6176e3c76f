/** @module `calsync healthcheck`: asks this host's daemon for /healthz (a container HEALTHCHECK). */
import type { Config } from "../config/config.ts";

/** How long the daemon has to answer; a container runtime's own timeout is usually 3 s. */
const TIMEOUT_MS = 2_000;

/**
 * Returns 0 when the daemon on HOST:PORT answers /healthz with 200, else 1 with one line on
 * `writeErr`. A wildcard HOST is asked on loopback. It replaces `curl` in the runtime image.
 */
export async function healthcheck(
  config: Config,
  writeErr: (text: string) => void,
): Promise<number> {
  const wildcard = config.HOST === "0.0.0.0" || config.HOST === "::" || config.HOST === "[::]";
  const host = wildcard
    ? "127.0.0.1"
    : config.HOST.includes(":")
    ? `[${config.HOST}]`
    : config.HOST;
  const url = `http://${host}:${config.PORT}/healthz`;
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
    await response.body?.cancel();
    if (response.status === 200) return 0;
    writeErr(`calsync: ${url} answered HTTP ${response.status}\n`);
  } catch (error) {
    writeErr(`calsync: cannot reach ${url}: ${(error as Error).message}\n`);
  }
  return 1;
}
