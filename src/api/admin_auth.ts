/** @module Bearer-token authentication of the admin API (`CALSYNC_ADMIN_TOKEN`). */
import type { MiddlewareHandler } from "hono";
import { HttpError } from "../core/errors.ts";
import { secretsEqual } from "../crypto/secret_compare.ts";
import type { Metrics } from "../metrics/metrics.ts";
import { logger } from "../log/setup.ts";

const log = logger("api");

/** The token a request presents in `Authorization: Bearer TOKEN`, or null. */
export function bearerToken(header: string | undefined): string | null {
  const match = /^Bearer[ ]+([^\s]+)\s*$/i.exec(header ?? "");
  return match ? match[1] : null;
}

/**
 * Refuses a request without the admin token. Missing and wrong tokens get the same 401, so a
 * caller learns nothing about which routes exist or why it was refused; the comparison takes time
 * that depends only on the stored token's length.
 */
export function requireAdminToken(token: string, metrics?: Metrics): MiddlewareHandler {
  return async (c, next) => {
    const presented = bearerToken(c.req.header("authorization"));
    if (presented === null || !secretsEqual(token, presented)) {
      metrics?.adminApiRejections.inc({ reason: presented === null ? "missing" : "wrong" });
      log.warn("Refused an admin API request to {method} {path}: {reason} token", {
        method: c.req.method,
        path: c.req.path,
        reason: presented === null ? "missing" : "wrong",
      });
      throw new HttpError(401, {
        type: "unauthorized",
        message: "Authentication required",
        headers: { "www-authenticate": 'Bearer realm="calsync"' },
      });
    }
    await next();
  };
}
