/** @module Mounts the provider webhook endpoints on the HTTP app. */
import type { RouteInstaller } from "../runtime/serve.ts";

/** Installs `/webhooks/google` and `/webhooks/microsoft` (filled in by the webhooks work). */
export const installWebhookRoutes: RouteInstaller = () => {};
