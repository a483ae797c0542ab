/**
 * The Worker's bindings and per-request context, declared once. Names match wrangler.toml.
 */
import type { Db } from "./db";

export interface Env {
  DB: D1Database;
  /** Accepted events on their way to the single-writer pipeline consumer. */
  EVENTS: Queue<unknown>;
  /** Webhook deliveries on their way to destinations. */
  DELIVERIES: Queue<unknown>;
  /** Requests per write key on the /v1 ingest routes (Workers Rate Limiting binding). */
  INGEST_RATE_LIMIT: RateLimit;
  /** Bearer token for the admin API (a Worker secret; `.dev.vars` locally). */
  ADMIN_TOKEN?: string;
  /** Write key of the local demo site served at /demo (development only). */
  DEMO_WRITE_KEY?: string;
  /** "true" lets webhooks target http:// and private addresses (local development only). */
  ALLOW_PRIVATE_DESTINATIONS?: string;
  /** "true" enables the path-form proxy `/p/:siteId/*` on the Worker's own origin (local development only). */
  ALLOW_PATH_PROXY?: string;
}

export type Role = "admin" | "marketer" | "viewer";

/** Who is calling the admin API: the ADMIN_TOKEN holder or a signed-in dashboard user. */
export interface Principal {
  kind: "token" | "user";
  role: Role;
  userId?: string;
}

/** Hono generics for every sub-app. */
export interface AppEnv {
  Bindings: Env;
  Variables: {
    db: Db;
    principal: Principal;
  };
}
