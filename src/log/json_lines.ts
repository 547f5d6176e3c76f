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

/** Turns one record into a JSON line: time, level, category, message, then the event's fields. */
export function formatJsonLine(record: LogRecord): string {
  const fields = redact(record.properties) as Record<string, unknown>;
  const line = {
    time: new Date(record.timestamp).toISOString(),
    level: record.level,
    category: record.category.join("."),
    message: redactText(renderMessage(record.message)),
    ...fields,
  };
  return JSON.stringify(line) + "\n";
}
