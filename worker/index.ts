/**
 * Tessera's Worker: one Hono app assembled from a sub-app per resource, plus the queue consumers
 * and the cron handler.
 */
import { Hono } from "hono";
import { destinationsApi, handleDeadDeliveries, handleDeliveries } from "./activation";
import { authApi, authenticate } from "./auth";
import { crmApi } from "./crm";
import { createDb } from "./db";
import type { AppEnv, Env } from "./env";
import { eventsApi } from "./events";
import { identityPolicyApi } from "./identity";
import { ingestApi, rejectedApi } from "./ingest";
import { ApiError, onError } from "./lib/errors";
import { openApiDocument } from "./lib/openapi";
import { notFoundOrMethodNotAllowed } from "./lib/routing";
import { personalizeApi, proxy, proxyHost, slotsApi } from "./personalize";
import { consumeEvents, deadLettersApi, recordDeadLetters, sweepRetention } from "./pipeline";
import { profilesApi } from "./profiles";
import { runScheduled, segmentsApi } from "./segments";
import { sitesApi } from "./sites";
import { statsApi } from "./stats";
import { usersApi } from "./users";
import { web } from "./web";

const api = new Hono<AppEnv>()
  // The API describes itself publicly (it holds no data); everything else needs credentials.
  .get("/openapi.json", (c) => c.json(openApiDocument()))
  .use(authenticate)
  .route("/auth", authApi)
  .route("/users", usersApi)
  .route("/", crmApi)
  .route("/sites", sitesApi)
  .route("/sites", identityPolicyApi)
  .route("/profiles", profilesApi)
  .route("/segments", segmentsApi)
  .route("/destinations", destinationsApi)
  .route("/dead-letters", deadLettersApi)
  .route("/events", eventsApi)
  .route("/stats", statsApi)
  .route("/slots", slotsApi)
  .route("/rejected", rejectedApi);

/** What every request passes first, whichever app serves it. */
function withBase() {
  return (
    new Hono<AppEnv>()
      // First: a site's proxy hostname is the site's, in full; none of Tessera's routes exist there.
      .use(proxyHost)
      .use(async (c, next) => {
        c.set("db", createDb(c.env.DB));
        await next();
      })
  );
}

/** The public edge routes under /v1: ingestion, personalization, and a constant route. */
function withEdge(app: Hono<AppEnv>) {
  return (
    app
      // A constant route: the benchmarks' latency floor for this Worker.
      .get("/v1/ping", (c) => c.json({ ok: true }))
      .route("/v1/personalize", personalizeApi)
      .route("/v1", ingestApi)
  );
}

function finish(app: Hono<AppEnv>) {
  app.onError(onError);
  app.notFound(notFoundOrMethodNotAllowed(app));
  return app;
}

/** The whole Worker as one app: every route (tests and the route matrix use it). */
const app = finish(
  withEdge(withBase())
    .get("/healthz", async (c) => {
      try {
        await c.env.DB.prepare("SELECT 1").first();
      } catch {
        throw new ApiError("unavailable", "Database unavailable", { headers: { "Retry-After": "5" } });
      }
      return c.json({ ok: true });
    })
    .route("/p", proxy)
    .route("/api", api)
    .route("/", web),
);

/**
 * The /v1 routes again, alone, for the hot path. The whole app mixes static and parameter
 * segments at one level (`/contacts/export.csv` beside `/contacts/:id`), which Hono's
 * RegExpRouter can't express, so it walks a trie of some 230 routes on every request; this app's
 * few routes keep RegExpRouter. Same middleware, same handlers, same errors.
 */
const edge = finish(withEdge(withBase()));

export default {
  fetch(request, env, ctx) {
    const { pathname } = new URL(request.url);
    return (pathname.startsWith("/v1/") ? edge : app).fetch(request, env, ctx);
  },
  // One consumer per queue, by name (wrangler.toml). Add a case per new queue.
  async queue(batch, env, ctx) {
    switch (batch.queue) {
      case "tessera-events":
        return consumeEvents(batch, env, ctx);
      case "tessera-events-dlq":
        return recordDeadLetters(batch, env);
      case "tessera-deliveries":
        return handleDeliveries(batch, env);
      case "tessera-deliveries-dlq":
        return handleDeadDeliveries(batch, env);
      default:
        // Throwing keeps the messages (they are retried) rather than dropping them unseen.
        throw new Error(`No consumer for queue ${batch.queue}`);
    }
  },
  // Every minute: lapsed segment windows, then the webhook outbox, then retention of diagnostics.
  async scheduled(controller, env, ctx) {
    ctx.waitUntil(runScheduled(env, controller.scheduledTime));
    ctx.waitUntil(sweepRetention(env, controller.scheduledTime));
  },
} satisfies ExportedHandler<Env>;

export { app };
