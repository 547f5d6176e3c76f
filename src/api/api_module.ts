/** @module What a resource of the admin API contributes: its routes and their OpenAPI paths. */
import type { Hono } from "hono";
import type { ZodOpenApiPathsObject } from "zod-openapi";

/**
 * One resource of `/api/v1` (accounts, connections, changes, subscribers...). `mount` adds routes
 * relative to `/api/v1`; `paths` documents the same routes, keyed by their full path
 * (`/api/v1/...`), from the zod schemas the handlers validate with, so the document cannot drift.
 */
export type ApiModule = {
  paths: ZodOpenApiPathsObject;
  mount: (api: Hono) => void;
};
