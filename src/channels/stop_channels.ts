/** @module Stops a connection's channels before it is removed (best effort). */
import { delay } from "../core/delay.ts";
import { claimConnectionsForChannelWork } from "../storage/connections.ts";
import { listConnectionChannels } from "../storage/webhook_channels.ts";
import { logger } from "../log/setup.ts";
import type { ChannelDeps } from "./channel_deps.ts";
import { stopChannel } from "./connection_channels.ts";

const log = logger("channels");

/**
 * Stops every channel of a connection at its provider, so nothing keeps notifying a removed
 * connection (orphaned channels pile up otherwise). Best effort: failures are logged and the
 * channels expire on their own. The connection's lease is taken first (waiting up to `waitMs`
 * for a running sync) and deliberately kept: the caller deletes the connection next, and a
 * released lease would let a maintenance pass open a new channel in between.
 */
export async function stopConnectionChannels(
  deps: ChannelDeps,
  connectionId: string,
  options: { signal: AbortSignal; waitMs?: number },
): Promise<{ stopped: number; failed: number }> {
  const result = { stopped: 0, failed: 0 };
  const rows = await listConnectionChannels(deps.sql, connectionId);
  if (rows.length === 0) return result;
  const deadline = Date.now() + (options.waitMs ?? 10_000);
  let connection;
  for (;;) {
    [connection] = await claimConnectionsForChannelWork(deps.sql, {
      limit: 1,
      leaseMs: deps.leaseMs,
      ownerPrefix: `remove:${deps.replicaId}/${crypto.randomUUID().slice(0, 8)}`,
      allowlist: null,
      connectionId,
    });
    if (connection || Date.now() >= deadline || options.signal.aborted) break;
    await delay(250, options.signal);
  }
  if (!connection) {
    log.warn(
      "Cannot stop the channels of connection {connection_id}: it stayed busy; they expire",
      {
        connection_id: connectionId,
        channels: rows.length,
      },
    );
    result.failed = rows.length;
    return result;
  }
  const work = { deps, connection, signal: options.signal };
  for (const row of await listConnectionChannels(deps.sql, connectionId)) {
    if (await stopChannel(work, row)) result.stopped++;
    else result.failed++;
  }
  return result;
}
