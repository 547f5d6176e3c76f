/** @module calsync's version, as deno.json states it (a test keeps the two equal). */

/** The version shown by the admin API's OpenAPI document and `calsync --version`. */
export const CALSYNC_VERSION = "0.1.0";
