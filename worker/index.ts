/**
 * Tessera's Worker: one Hono app assembled from a sub-app per resource, plus the queue consumers
 * and the cron handler.
 */
import { Hono } from "hono";
import { authenticate } from "./auth";
import { createDb } from "./db";
import type { AppEnv, Env } from "./env";
import { ApiError, onError } from "./lib/errors";
import { openApiDocument } from "./lib/openapi";
import { notFoundOrMethodNotAllowed } from "./lib/routing";
import { sitesApi } from "./sites";
import { statsApi } from "./stats";
import { web } from "./web";

const api = new Hono<AppEnv>()
  // The API describes itself publicly (it holds no data); everything else needs credentials.
  .get("/openapi.json", (c) => c.json(openApiDocument()))
  .use(authenticate)
  .route("/sites", sitesApi)
  .route("/stats", statsApi);

const app = new Hono<AppEnv>()
  .use(async (c, next) => {
    c.set("db", createDb(c.env.DB));
    await next();
  })
  .get("/healthz", async (c) => {
    try {
      await c.env.DB.prepare("SELECT 1").first();
    } catch {
      throw new ApiError("unavailable", "Database unavailable", { headers: { "Retry-After": "5" } });
    }
    return c.json({ ok: true });
  })
  .route("/api", api)
  .route("/", web);

app.onError(onError);
app.notFound(notFoundOrMethodNotAllowed(app));

export default {
  fetch: app.fetch,
} satisfies ExportedHandler<Env>;

export { app };
