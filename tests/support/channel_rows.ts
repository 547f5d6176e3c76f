/** @module Small helpers the channel tests share. */
import type { Sql } from "../../src/storage/client.ts";
import { assertEquals } from "./assert.ts";

/** Makes a channel row's provider work due now, as if its renewal time had come. */
export async function dueNow(sql: Sql, rowId: string): Promise<void> {
  await sql`update webhook_channels set next_work_at = now() where id = ${rowId}`;
}

/** Asserts a list holds exactly one row and returns it. */
export function only<T>(rows: T[]): T {
  assertEquals(rows.length, 1, "rows");
  return rows[0];
}
