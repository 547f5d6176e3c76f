/** @module Formats LogTape records as one redacted JSON object per line. */
import type { LogRecord } from "@logtape/logtape";
import { redact, redactText } from "./redact.ts";

/** Renders a LogTape message (text parts interleaved with values) as plain text. */
export function renderMessage(parts: readonly unknown[]): string {
  let text = "";
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i];
    text += i % 2 === 0 ? String(part) : typeof part === "string" ? part : JSON.stringify(part);
  }
  return text;
}

// The line's own members; a field of the same name must not overwrite them.
const RESERVED = new Set(["time", "level", "category", "message", "fields"]);

/**
 * Turns one record into a JSON line: time, level, category, message, then the event's fields. A
 * field named like one of the line's own members (`message`, often a placeholder's value) goes
 * under `fields` instead of replacing the rendered message.
 */
export function formatJsonLine(record: LogRecord): string {
  const redacted = redact(record.properties) as Record<string, unknown>;
  const fields: Record<string, unknown> = {};
  const clashing: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(redacted)) {
    if (RESERVED.has(key)) clashing[key] = value;
    else fields[key] = value;
  }
  const line = {
    time: new Date(record.timestamp).toISOString(),
    level: record.level,
    category: record.category.join("."),
    message: redactText(renderMessage(record.message)),
    ...fields,
    ...(Object.keys(clashing).length > 0 ? { fields: clashing } : {}),
  };
  return JSON.stringify(line) + "\n";
}
