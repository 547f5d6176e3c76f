/** @module Reads calsync's configuration from environment variables, once, into a frozen object. */
import { z } from "zod";
import { parseDurationMs } from "../core/duration.ts";
import { parseKeyList } from "../crypto/secret_box.ts";
import { ConfigError } from "../core/errors.ts";

const LOG_LEVELS = ["trace", "debug", "info", "warning", "error", "fatal"] as const;

/** Names of variables whose values are secrets and never appear in messages. */
export const SECRET_VARIABLES: ReadonlySet<string> = new Set([
  "DATABASE_URL",
  "CALSYNC_ENCRYPTION_KEY",
  "GOOGLE_CLIENT_SECRET",
  "MICROSOFT_CLIENT_SECRET",
  "CALSYNC_ADMIN_TOKEN",
]);

function int(defaultValue: number, min: number, max: number) {
  return z
    .string()
    .default(String(defaultValue))
    .transform((text, ctx) => {
      const value = Number(text);
      if (!/^\s*-?\d+\s*$/.test(text) || value < min || value > max) {
        ctx.addIssue({ code: "custom", message: `must be an integer from ${min} to ${max}` });
        return z.NEVER;
      }
      return value;
    });
}

function optionalInt(min: number, max: number) {
  return z
    .string()
    .optional()
    .transform((text, ctx) => {
      if (text === undefined) return undefined;
      const value = Number(text);
      if (!/^\s*-?\d+\s*$/.test(text) || value < min || value > max) {
        ctx.addIssue({ code: "custom", message: `must be an integer from ${min} to ${max}` });
        return z.NEVER;
      }
      return value;
    });
}

function duration(defaultValue: string) {
  return z
    .string()
    .default(defaultValue)
    .transform((text, ctx) => {
      const value = parseDurationMs(text);
      if (value === null || value <= 0) {
        ctx.addIssue({
          code: "custom",
          message: 'must be a positive duration such as "72h", "30m", "15s" or "500ms"',
        });
        return z.NEVER;
      }
      return value;
    });
}

const HttpUrl = z.string().refine((text) => {
  try {
    const parsed = new URL(text);
    return parsed.protocol === "http:" || parsed.protocol === "https:";
  } catch {
    return false;
  }
}, "must be an absolute http(s) URL");

function httpUrl(defaultValue: string) {
  return HttpUrl.default(defaultValue);
}

const optionalText = z.string().trim().min(1).optional();

const EnvSchema = z.object({
  DATABASE_URL: z
    .string()
    .refine(
      (text) => /^postgres(ql)?:\/\//.test(text),
      "must be a postgres:// or postgresql:// URL",
    )
    .optional(),
  CALSYNC_DATA_DIR: z.string().min(1).default("./data"),
  HOST: z.string().min(1).default("0.0.0.0"),
  PORT: int(8080, 0, 65535),
  LOG_LEVEL: z.enum(LOG_LEVELS, { message: `must be one of ${LOG_LEVELS.join(", ")}` }).default(
    "info",
  ),
  CALSYNC_SHUTDOWN_TIMEOUT_MS: int(10_000, 0, 600_000),
  CALSYNC_PUBLIC_URL: HttpUrl.optional(),
  // The admin API (/api/v1) and the console are off unless this is set; long enough that
  // guessing is hopeless even without the rate of a 401 being limited.
  CALSYNC_ADMIN_TOKEN: z.string().trim().min(24, "must be at least 24 characters").optional(),
  METRICS_ADDR: z.string().regex(
    /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/,
    "must be host:port, e.g. 127.0.0.1:9464",
  ).optional(),
  HTTP_MAX_BODY_BYTES: int(1_048_576, 1_024, 67_108_864),
  HTTP_HEADER_TIMEOUT_MS: int(10_000, 100, 600_000),
  HTTP_BODY_TIMEOUT_MS: int(10_000, 100, 600_000),
  HTTP_IDLE_TIMEOUT_MS: int(5_000, 100, 3_600_000),
  HTTP_MAX_CONNECTIONS: int(1_024, 1, 1_000_000),
  HTTP_MAX_BYTES_IN_FLIGHT: int(67_108_864, 65_536, 4_294_967_296),
  HTTP_MAX_HEADER_BYTES: int(16_384, 1_024, 1_048_576),
  DB_POOL_MAX: int(10, 1, 1_000),
  DB_STATEMENT_TIMEOUT_MS: int(15_000, 100, 3_600_000),
  DB_CONNECT_TIMEOUT_MS: int(5_000, 100, 600_000),
  DB_QUEUE_MAX: int(100, 0, 100_000),
  DB_RETRY_BASE_MS: int(200, 1, 600_000),
  DB_RETRY_MAX_MS: int(15_000, 1, 3_600_000),
  GOOGLE_API_BASE_URL: httpUrl("https://www.googleapis.com/calendar/v3"),
  GOOGLE_TOKEN_URL: httpUrl("https://oauth2.googleapis.com/token"),
  GOOGLE_CLIENT_ID: optionalText,
  GOOGLE_CLIENT_SECRET: optionalText,
  MICROSOFT_GRAPH_BASE_URL: httpUrl("https://graph.microsoft.com/v1.0"),
  MICROSOFT_TOKEN_URL: httpUrl("https://login.microsoftonline.com/common/oauth2/v2.0/token"),
  MICROSOFT_CLIENT_ID: optionalText,
  MICROSOFT_CLIENT_SECRET: optionalText,
  SYNC_PROVIDER_ALLOWLIST: z.string().optional(),
  SYNC_CONCURRENCY: optionalInt(1, 256),
  // Per-provider lanes (issue 15); unset: SYNC_CONCURRENCY, else DEFAULT_LANE_CONCURRENCY.
  SYNC_CONCURRENCY_GOOGLE: optionalInt(1, 256),
  SYNC_CONCURRENCY_MICROSOFT: optionalInt(1, 256),
  SYNC_BREAKER_WINDOW: duration("60s"),
  SYNC_BREAKER_FAILURE_PERCENT: int(50, 1, 100),
  SYNC_BREAKER_MIN_REQUESTS: int(20, 1, 1_000_000),
  SYNC_BREAKER_MIN_CONNECTIONS: int(5, 1, 1_000_000),
  SYNC_BREAKER_PROBE_INTERVAL: duration("10s"),
  SYNC_BREAKER_PROBE_MAX: duration("5m"),
  SYNC_BREAKER_DRAIN_STEP: duration("2s"),
  GOOGLE_QUOTA_PER_MINUTE: int(10_000, 1, 100_000_000),
  MICROSOFT_MAILBOX_CONCURRENCY: int(4, 1, 64),
  SCHEDULER_POLL_INTERVAL_MS: int(5_000, 10, 3_600_000),
  SYNC_LEASE_MS: int(120_000, 1_000, 86_400_000),
  SYNC_BACKOFF_BASE_MS: int(5_000, 1, 86_400_000),
  SYNC_BACKOFF_MAX_MS: int(3_600_000, 1, 604_800_000),
  SYNC_HTTP_TIMEOUT_MS: int(30_000, 100, 600_000),
  SYNC_WINDOW_PAST_DAYS: int(30, 0, 3_650),
  SYNC_WINDOW_FUTURE_DAYS: int(365, 1, 3_650),
  SYNC_CHUNK_EVENTS: int(2_500, 1, 100_000),
  // Runs listing a whole calendar at once hold a page each (~10-15 MB); incremental runs do not.
  SYNC_LISTING_CONCURRENCY: int(16, 1, 256),
  WEBHOOK_DEDUPE_TTL: duration("72h"),
  SYNC_POLL_INTERVAL: duration("15m"),
  SYNC_POLL_INTERVAL_WITH_PUSH: duration("6h"),
  SYNC_RECONCILE_INTERVAL: duration("24h"),
  SYNC_MAX_REJECTIONS: int(5, 1, 1_000),
  SYNC_DELETE_GUARD_PERCENT: int(50, 0, 100),
  SYNC_DELETE_GUARD_MIN: int(20, 0, 10_000_000),
  WEBHOOK_RESPONSE_DEADLINE_MS: int(2_500, 100, 60_000),
  // Change feed (#14): retention, and delivery to subscribers.
  CHANGE_FEED_RETENTION: duration("7d"),
  SUBSCRIBER_MAX_FAILING: duration("3d"),
  SUBSCRIBER_HTTP_TIMEOUT_MS: int(10_000, 100, 600_000),
  SUBSCRIBER_BACKOFF_BASE_MS: int(1_000, 1, 86_400_000),
  SUBSCRIBER_BACKOFF_MAX_MS: int(3_600_000, 1, 604_800_000),
  SUBSCRIBER_CONCURRENCY: int(16, 1, 1_024),
  CALSYNC_ENCRYPTION_KEY: z.string().optional(),
  CALSYNC_ENCRYPTION_KEY_FILE: z.string().min(1).optional(),
  DATABASE_URL_FILE: z.string().min(1).optional(),
  GOOGLE_CLIENT_SECRET_FILE: z.string().min(1).optional(),
  MICROSOFT_CLIENT_SECRET_FILE: z.string().min(1).optional(),
  CALSYNC_ADMIN_TOKEN_FILE: z.string().min(1).optional(),
  // Accounts and the connect flow (issue 13).
  GOOGLE_AUTH_URL: httpUrl("https://accounts.google.com/o/oauth2/v2/auth"),
  MICROSOFT_AUTH_URL: httpUrl("https://login.microsoftonline.com/common/oauth2/v2.0/authorize"),
  MICROSOFT_TENANT: z.string().regex(
    /^[A-Za-z0-9][A-Za-z0-9.-]{0,99}$/,
    "must be common, organizations, consumers, a tenant id or a domain",
  ).default("common"),
  CALSYNC_CONNECT_CALENDARS: z.enum(["all", "primary", "none"], {
    message: "must be all, primary or none",
  }).default("primary"),
  CALSYNC_CONNECT_STATE_TTL: duration("10m"),
  // The operator console (#17): how long a login lasts, where `calsync drill --out` writes.
  CALSYNC_CONSOLE_SESSION_TTL: duration("8h"),
  CALSYNC_DRILL_REPORT_DIR: optionalText,
});

// Secrets that may come from a file instead (systemd LoadCredential, a mounted secret), so they
// never sit in the environment, where /proc/PID/environ and crash reports can show them.
const FILE_SECRETS = [
  "DATABASE_URL",
  "GOOGLE_CLIENT_SECRET",
  "MICROSOFT_CLIENT_SECRET",
  "CALSYNC_ADMIN_TOKEN",
] as const;

/** The parsed environment: every setting calsync reads. */
export type Env = z.output<typeof EnvSchema>;

/** calsync's configuration, typed and frozen. */
export type Config = Readonly<
  Omit<Env, "SYNC_PROVIDER_ALLOWLIST"> & { SYNC_PROVIDER_ALLOWLIST: readonly string[] | null }
>;

/** Thrown when the environment does not describe a valid configuration; one line per problem. */
export { ConfigError };

/** Every environment variable calsync reads (the compiled binary is granted exactly these). */
export const CONFIG_VARIABLES: readonly string[] = Object.keys(EnvSchema.shape);

/** Reads calsync's variables one by one, so only they need `--allow-env`. */
export function readEnv(): Record<string, string | undefined> {
  return Object.fromEntries(CONFIG_VARIABLES.map((name) => [name, Deno.env.get(name)]));
}

/** Parses the environment into a frozen config, or throws ConfigError naming each bad variable. */
export function loadConfig(
  env: Record<string, string | undefined>,
  readFile: (path: string) => string = Deno.readTextFileSync,
): Config {
  const input: Record<string, string> = {};
  for (const key of Object.keys(EnvSchema.shape)) {
    const value = env[key];
    if (value !== undefined && value !== "") input[key] = value;
  }
  const problems: string[] = [];
  for (const name of FILE_SECRETS) {
    const path = input[`${name}_FILE`];
    if (path === undefined) continue;
    if (input[name] !== undefined) {
      problems.push(`${name}_FILE: set either ${name} or ${name}_FILE`);
      continue;
    }
    try {
      // A trailing newline is how editors and `echo` end files, never part of the secret.
      input[name] = readFile(path).replace(/\r?\n$/, "");
    } catch (error) {
      problems.push(`${name}_FILE: cannot read it: ${(error as Error).message}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  const parsed = EnvSchema.safeParse(input);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const name = String(issue.path[0] ?? "environment");
      // Never echo a value back: it may be a secret, and the variable name is enough to act on.
      problems.push(`${name}: ${issue.message}`);
    }
    throw new ConfigError(problems);
  }
  const data = parsed.data;
  if (data.SYNC_BACKOFF_BASE_MS > data.SYNC_BACKOFF_MAX_MS) {
    problems.push("SYNC_BACKOFF_BASE_MS: must not be greater than SYNC_BACKOFF_MAX_MS");
  }
  if (data.SYNC_POLL_INTERVAL > data.SYNC_POLL_INTERVAL_WITH_PUSH) {
    problems.push("SYNC_POLL_INTERVAL: must not be longer than SYNC_POLL_INTERVAL_WITH_PUSH");
  }
  if (Boolean(data.GOOGLE_CLIENT_ID) !== Boolean(data.GOOGLE_CLIENT_SECRET)) {
    problems.push("GOOGLE_CLIENT_SECRET: GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET go together");
  }
  if (Boolean(data.MICROSOFT_CLIENT_ID) !== Boolean(data.MICROSOFT_CLIENT_SECRET)) {
    problems.push(
      "MICROSOFT_CLIENT_SECRET: MICROSOFT_CLIENT_ID and MICROSOFT_CLIENT_SECRET go together",
    );
  }
  const allowlist = data.SYNC_PROVIDER_ALLOWLIST === undefined
    ? null
    : data.SYNC_PROVIDER_ALLOWLIST.split(",").map((item) => item.trim()).filter(Boolean);
  if (allowlist !== null && allowlist.length === 0) {
    problems.push("SYNC_PROVIDER_ALLOWLIST: must list at least one provider kind or name");
  }
  let keyText = data.CALSYNC_ENCRYPTION_KEY;
  if (data.CALSYNC_ENCRYPTION_KEY_FILE !== undefined) {
    if (keyText !== undefined) {
      problems.push(
        "CALSYNC_ENCRYPTION_KEY_FILE: set either CALSYNC_ENCRYPTION_KEY or CALSYNC_ENCRYPTION_KEY_FILE",
      );
    } else {
      try {
        keyText = readFile(data.CALSYNC_ENCRYPTION_KEY_FILE);
      } catch (error) {
        problems.push(`CALSYNC_ENCRYPTION_KEY_FILE: cannot read it: ${(error as Error).message}`);
      }
    }
  }
  if (keyText !== undefined) {
    const keys = parseKeyList(keyText);
    if (typeof keys === "string") {
      const source = data.CALSYNC_ENCRYPTION_KEY_FILE
        ? "CALSYNC_ENCRYPTION_KEY_FILE"
        : "CALSYNC_ENCRYPTION_KEY";
      problems.push(`${source}: ${keys}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze({
    ...data,
    CALSYNC_ENCRYPTION_KEY: keyText,
    SYNC_PROVIDER_ALLOWLIST: allowlist && Object.freeze(allowlist),
  });
}

/**
 * Syncs in flight per provider lane when neither SYNC_CONCURRENCY_<PROVIDER> nor SYNC_CONCURRENCY
 * is set. A no-op sync waits on round trips, not on the CPU: on 2 cores the bench drains ~1,350
 * no-op syncs/s per replica at 16 in flight, ~1,850/s at 32 and ~2,500/s at 64 (completions of
 * runs that finish together share one statement). Against Google at ~150 ms per request 64 in
 * flight would be ~430 requests/s; the quota bucket (GOOGLE_QUOTA_PER_MINUTE) holds the project
 * to its quota, and Graph's mailbox slots hold each mailbox to 4.
 */
export const DEFAULT_LANE_CONCURRENCY = 64;

/** Syncs in flight for one provider's lane: its own setting, else SYNC_CONCURRENCY, else 64. */
export function laneConcurrency(config: Config, kind: "google" | "microsoft"): number {
  const own = kind === "google"
    ? config.SYNC_CONCURRENCY_GOOGLE
    : config.SYNC_CONCURRENCY_MICROSOFT;
  return own ?? config.SYNC_CONCURRENCY ?? DEFAULT_LANE_CONCURRENCY;
}
