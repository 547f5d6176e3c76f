/** @module A change as JSON: the one shape the API, the CLI and webhook bodies share. */
import type { ChangeRow } from "../storage/change_feed.ts";

/** A change row as JSON. */
export type ChangeJson = {
  seq: number;
  committed_at: string;
  type: string;
  connection_id: string | null;
  account_id: string | null;
  external_event_id: string | null;
  data: Record<string, unknown> | null;
};

/** The JSON form of a change row. */
export function changeJson(row: ChangeRow): ChangeJson {
  return {
    seq: row.seq,
    committed_at: row.committed_at.toISOString(),
    type: row.type,
    connection_id: row.connection_id,
    account_id: row.account_id,
    external_event_id: row.external_event_id,
    data: row.data,
  };
}
