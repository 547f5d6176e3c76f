/** @module The channel maintenance pass: claims connections needing channel work and does it. */
import { releaseLease } from "../storage/connections.ts";
import { claimConnectionsForChannelWork } from "../storage/connections.ts";
import { logger } from "../log/setup.ts";
import type { ChannelDeps } from "../channels/channel_deps.ts";
import { maintainConnectionChannels } from "../channels/connection_channels.ts";

const log = logger("channels");

// Enough rounds to catch up after an outage without starving the rest of maintenance.
const MAX_ROUNDS = 4;

/**
 * Creates, renews and stops channels for connections that need it, a batch at a time; does
 * nothing without `CALSYNC_PUBLIC_URL`. Each connection is worked on under its own lease, which
 * is released afterwards; a failure of one connection is logged and never stops the others.
 * Claim errors (database down) throw, for the scheduler to log and count.
 */
export async function runChannelMaintenance(
  deps: ChannelDeps,
  signal: AbortSignal,
): Promise<{ connections: number }> {
  if (deps.publicUrl === null) return { connections: 0 };
  let connections = 0;
  for (let round = 0; round < MAX_ROUNDS && !signal.aborted; round++) {
    const claimed = await claimConnectionsForChannelWork(deps.sql, {
      limit: deps.batchSize,
      leaseMs: deps.leaseMs,
      ownerPrefix: `channels:${deps.replicaId}/${crypto.randomUUID().slice(0, 8)}`,
      allowlist: deps.allowlist,
    });
    connections += claimed.length;
    await Promise.all(claimed.map(async (connection) => {
      try {
        await maintainConnectionChannels({ deps, connection, signal });
      } catch (error) {
        log.error("Channel work for connection {connection_id} failed: {error_message}", {
          connection_id: connection.id,
          provider: connection.providerKind,
          kind: "database",
          error_message: (error as Error).message,
        });
      } finally {
        // If this fails too (database down), the lease simply expires.
        await releaseLease(deps.sql, connection).catch(() => {});
      }
    }));
    if (claimed.length < deps.batchSize) break;
  }
  return { connections };
}
