/** @module Mounts the admin API under `/api/v1`: auth, the resources, the OpenAPI document. */
import { Hono } from "hono";
import { createDocument } from "zod-openapi";
import type { Metrics } from "../metrics/metrics.ts";
import { requireAdminToken } from "./admin_auth.ts";
import type { ApiModule } from "./api_module.ts";
import { problemResponses } from "./api_schemas.ts";

/** Where the admin API lives on the main listener. */
export const API_PREFIX = "/api/v1";

/** What the admin API needs: the token (null: the API is off), its resources, the version. */
export type AdminApiDeps = {
  token: string | null;
  modules: readonly ApiModule[];
  metrics?: Metrics;
  version: string;
};

/** The OpenAPI 3.1 document of the given resources. */
export function openApiDocument(modules: readonly ApiModule[], version: string) {
  const paths = Object.assign({}, ...modules.map((module) => module.paths));
  return createDocument({
    openapi: "3.1.0",
    info: { title: "calsync admin API", version },
    components: {
      securitySchemes: { adminToken: { type: "http", scheme: "bearer" } },
    },
    security: [{ adminToken: [] }],
    paths: {
      [`${API_PREFIX}/openapi.json`]: {
        get: {
          summary: "This document",
          responses: { 200: { description: "The OpenAPI 3.1 document" }, ...problemResponses(401) },
        },
      },
      ...paths,
    },
  });
}

/**
 * Adds `/api/v1` to `app` when a token is configured. Without one nothing is mounted, so the
 * routes answer the same 404 as any unknown path: an API that is off cannot be probed.
 */
export function mountAdminApi(app: Hono, deps: AdminApiDeps): void {
  if (deps.token === null) return;
  const api = new Hono();
  api.use("*", requireAdminToken(deps.token, deps.metrics));
  const document = openApiDocument(deps.modules, deps.version);
  api.get("/openapi.json", (c) => c.json(document));
  for (const module of deps.modules) module.mount(api);
  app.route(API_PREFIX, api);
}
