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

const app = new Hono<AppEnv>()
  // First: a site's proxy hostname is the site's, in full; none of Tessera's routes exist there.
  .use(proxyHost)
  .use(async (c, next) => {
    c.set("db", createDb(c.env.DB));
    await next();
  })
  // A constant route: the benchmarks' latency floor for this Worker.
  .get("/v1/ping", (c) => c.json({ ok: true }))
  .get("/healthz", async (c) => {
    try {
      await c.env.DB.prepare("SELECT 1").first();
    } catch {
      throw new ApiError("unavailable", "Database unavailable", { headers: { "Retry-After": "5" } });
    }
    return c.json({ ok: true });
  })
  .route("/v1/personalize", personalizeApi)
  .route("/v1", ingestApi)
  .route("/p", proxy)
  .route("/api", api)
  .route("/", web);

app.onError(onError);
app.notFound(notFoundOrMethodNotAllowed(app));

export default {
  fetch: app.fetch,
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
