/** @module Brings one claimed connection's channels up to date: create, renew, stop. */
import { requestSync } from "../storage/connections.ts";
import {
  activateChannel,
  type ChannelRow,
  deleteChannel,
  insertChannel,
  listConnectionChannels,
  renewChannel,
  retireOtherChannels,
  scheduleChannelWork,
  setChannelId,
} from "../storage/webhook_channels.ts";
import { logger } from "../log/setup.ts";
import { SyncFailure } from "../failures/failure.ts";
import type { ChannelWork } from "./channel_deps.ts";
import { recordChannelWorkFailure } from "./channel_failure.ts";
import { generateChannelSecret } from "./channel_secret.ts";
import { renewalTime } from "./channel_timing.ts";
import { stopGoogleChannel, watchGoogleCalendar, webhookAddress } from "./google_channels.ts";
import {
  createGraphSubscription,
  deleteGraphSubscription,
  renewGraphSubscription,
} from "./graph_subscriptions.ts";

const log = logger("channels");

// Stops are best effort and channels expire anyway; a pass does a few at most, so the pass
// stays well inside its lease.
const MAX_STOPS_PER_PASS = 2;

/**
 * Does the channel work one connection needs, its lease held: stops channels whose time has
 * come, then creates a channel if it has no live one, or renews the current one when due.
 * Provider failures are recorded on the row with backoff, logged and counted in
 * `calendar_sync_failures_total`; database errors throw.
 */
export async function maintainConnectionChannels(work: ChannelWork): Promise<void> {
  const { deps, connection } = work;
  const rows = await listConnectionChannels(deps.sql, connection.id);
  const now = Date.now();
  const due = (row: ChannelRow) => row.next_work_at !== null && row.next_work_at.getTime() <= now;

  let stops = 0;
  for (const row of rows) {
    if (!due(row) || (row.status !== "stopping" && row.status !== "removed")) continue;
    if (row.status === "removed" || stops++ < MAX_STOPS_PER_PASS) await stopChannel(work, row);
  }
  if (work.signal.aborted || deps.publicUrl === null) return;

  const creating = rows.find((row) => row.status === "creating");
  const active = rows.filter((row) => row.status === "active");
  if (creating) {
    if (due(creating)) await createChannel(work, creating, { replacing: active, fresh: false });
    return;
  }
  const current = active.at(-1);
  if (!current) {
    const row = await insertChannel(deps.sql, {
      connectionId: connection.id,
      provider: connection.providerKind,
      channelId: connection.providerKind === "google" ? crypto.randomUUID() : null,
      secret: await deps.secrets.seal(generateChannelSecret()),
    });
    await createChannel(work, row, { replacing: [], fresh: true });
    return;
  }
  if (active.length > 1) {
    // Left over from a handover interrupted after the new channel was confirmed.
    await retireOtherChannels(deps.sql, {
      connectionId: connection.id,
      keepRowId: current.id,
      stopAt: new Date(now + deps.overlapMs),
    });
  }
  if (!due(current)) return;
  if (connection.providerKind === "microsoft") {
    await renewSubscription(work, current);
    return;
  }
  // Google channels cannot be extended: open a new one, stop the old after an overlap (§2.5).
  // The new row carries the renewal from here on, with its own backoff if it fails; it is
  // inserted first so that a failure in between never leaves the renewal with no row at all.
  const row = await insertChannel(deps.sql, {
    connectionId: connection.id,
    provider: "google",
    channelId: crypto.randomUUID(),
    secret: await deps.secrets.seal(generateChannelSecret()),
  });
  await scheduleChannelWork(deps.sql, current.id, null);
  await createChannel(work, row, { replacing: active, fresh: true });
}

async function createChannel(
  work: ChannelWork,
  row: ChannelRow,
  options: { replacing: ChannelRow[]; fresh: boolean },
): Promise<void> {
  const { deps, connection } = work;
  const publicUrl = deps.publicUrl as string;
  const now = Date.now();
  let created: { channelId: string; resourceId: string | null; expiresAt: number };
  try {
    // Sealed at rest like refresh tokens; the plaintext exists only for the provider call.
    const secret = await deps.secrets.open(row.secret);
    if (connection.providerKind === "google") {
      let channelId = row.channel_id;
      if (!options.fresh || channelId === null) {
        // A retry needs a new id: Google may have created the last one before the failure (or
        // crash), and it rejects a reused id with channelIdNotUnique.
        channelId = crypto.randomUUID();
        await setChannelId(deps.sql, row.id, channelId);
      }
      const watched = await watchGoogleCalendar(work, {
        channelId,
        secret,
        expiresAt: now + deps.googleTtlMs,
        address: webhookAddress(publicUrl, "/webhooks/google"),
      });
      created = { channelId, ...watched };
    } else {
      const subscription = await createGraphSubscription(work, {
        secret,
        expiresAt: now + deps.graphTtlMs,
        address: webhookAddress(publicUrl, "/webhooks/microsoft"),
      });
      created = {
        channelId: subscription.subscriptionId,
        resourceId: null,
        expiresAt: subscription.expiresAt,
      };
    }
  } catch (error) {
    await recordChannelWorkFailure(work, row, { operation: "create", error });
    return;
  }
  const activated = await activateChannel(deps.sql, {
    rowId: row.id,
    leaseOwner: connection.leaseOwner,
    channelId: created.channelId,
    resourceId: created.resourceId,
    expiresAt: new Date(created.expiresAt),
    nextWorkAt: new Date(renewalTime(created.expiresAt, Date.now())),
  });
  if (!activated) {
    log.warn("Lost the lease on connection {connection_id} while creating its channel", {
      connection_id: connection.id,
      provider: connection.providerKind,
      channel_id: created.channelId,
    });
    return;
  }
  log.info("Created a {provider} push channel for connection {connection_id}", {
    connection_id: connection.id,
    provider: connection.providerKind,
    channel_id: created.channelId,
    expires_at: new Date(created.expiresAt).toISOString(),
  });
  if (options.replacing.length > 0) {
    await retireOtherChannels(deps.sql, {
      connectionId: connection.id,
      keepRowId: row.id,
      stopAt: new Date(Date.now() + deps.overlapMs),
    });
  }
  const covered = options.replacing.some((old) =>
    old.expires_at !== null && old.expires_at.getTime() > now
  );
  if (!covered) {
    // Changes made while no channel was listening would otherwise wait for the next change.
    await requestSync(deps.sql, connection.id);
  }
}

async function renewSubscription(work: ChannelWork, row: ChannelRow): Promise<void> {
  const { deps, connection } = work;
  if (row.channel_id === null) return;
  let renewed;
  try {
    renewed = await renewGraphSubscription(work, {
      subscriptionId: row.channel_id,
      expiresAt: Date.now() + deps.graphTtlMs,
    });
  } catch (error) {
    if (!(error instanceof SyncFailure && error.status === 404)) {
      await recordChannelWorkFailure(work, row, { operation: "renew", error });
      return;
    }
    // Graph deleted it (expired, or removed): start over with a new subscription.
    log.warn("Graph no longer has the subscription of connection {connection_id}; recreating", {
      connection_id: connection.id,
      provider: "microsoft",
      channel_id: row.channel_id,
    });
    await deleteChannel(deps.sql, row.id);
    const fresh = await insertChannel(deps.sql, {
      connectionId: connection.id,
      provider: "microsoft",
      channelId: null,
      secret: await deps.secrets.seal(generateChannelSecret()),
    });
    await createChannel(work, fresh, { replacing: [], fresh: true });
    return;
  }
  await renewChannel(deps.sql, row.id, {
    expiresAt: new Date(renewed.expiresAt),
    nextWorkAt: new Date(renewalTime(renewed.expiresAt, Date.now())),
  });
  log.info("Renewed the Graph subscription of connection {connection_id}", {
    connection_id: connection.id,
    provider: "microsoft",
    channel_id: row.channel_id,
    expires_at: new Date(renewed.expiresAt).toISOString(),
  });
}

/**
 * Stops a channel at its provider and deletes its row; returns false when the provider call
 * failed (recorded on the row with backoff). Rows with nothing to stop are just deleted.
 */
export async function stopChannel(work: ChannelWork, row: ChannelRow): Promise<boolean> {
  const expired = row.expires_at !== null && row.expires_at.getTime() <= Date.now();
  // Nothing to stop: Graph removed it, it expired, or the provider never confirmed it.
  const stoppable = row.status !== "removed" && !expired && row.channel_id !== null &&
    (row.provider === "microsoft" || row.resource_id !== null);
  try {
    if (stoppable && row.provider === "google") {
      await stopGoogleChannel(work, {
        channelId: row.channel_id as string,
        resourceId: row.resource_id as string,
      });
    } else if (stoppable) {
      await deleteGraphSubscription(work, row.channel_id as string);
    }
  } catch (error) {
    await recordChannelWorkFailure(work, row, { operation: "stop", error });
    return false;
  }
  await deleteChannel(work.deps.sql, row.id);
  if (stoppable) {
    log.info("Stopped {provider} push channel {channel_id} of connection {connection_id}", {
      connection_id: work.connection.id,
      provider: row.provider,
      channel_id: row.channel_id,
    });
  }
  return true;
}
