/** @module `calsync providers add|list|allowlist`. */
import type { ProviderKind } from "../core/provider_kind.ts";
import { CommandError, UsageError } from "../core/errors.ts";
import {
  findProvider,
  insertProvider,
  listProviders,
  setProviderAllowlisted,
} from "../storage/calendar_providers.ts";
import { type CommandHandler, isUniqueViolation, required } from "./command_context.ts";
import { formatTable } from "./format.ts";

/** Registers a provider; its name must be new. */
export const addProvider: CommandHandler = async ({ sql, options, emit }) => {
  const kind = required(options, "kind");
  if (kind !== "google" && kind !== "microsoft") {
    throw new UsageError(`--kind must be google or microsoft, got "${kind}"`);
  }
  const name = required(options, "name");
  try {
    const row = await insertProvider(sql, {
      kind: kind as ProviderKind,
      name,
      allowlisted: options.allowlisted === true,
    });
    emit(row, `${row.id}\n`);
  } catch (error) {
    if (isUniqueViolation(error)) {
      throw new CommandError(`A provider named "${name}" already exists`);
    }
    throw error;
  }
};

/** Lists every provider. */
export const listProvidersCommand: CommandHandler = async ({ sql, emit }) => {
  const rows = await listProviders(sql);
  emit(rows, formatTable(rows, ["id", "kind", "name", "allowlisted"]));
};

/** Allows (or with `--off` stops) a provider's connections from syncing. */
export const allowlistProvider: CommandHandler = async ({ sql, options, emit }) => {
  const provider = await findProvider(sql, required(options, "provider"));
  if (!provider) throw new CommandError(`No provider "${options.provider}"`);
  const allowlisted = options.off !== true;
  await setProviderAllowlisted(sql, provider.id, allowlisted);
  emit({ id: provider.id, allowlisted }, `${provider.name}: allowlisted=${allowlisted}\n`);
};
