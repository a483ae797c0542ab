/**
 * What browsers load from the Worker: the snippet (`/s.js`), the demo shop (`/demo`, local
 * development only) and the dashboard shell (`/dashboard/*`).
 */
import { type Context, Hono } from "hono";
import { getCookie } from "hono/cookie";
import { secureHeaders } from "hono/secure-headers";
import type { AppEnv } from "../env";
import { type Asset, dashboardJs, slotsJs, snippet } from "../generated/assets";
import { DashboardShell } from "./dashboard";
import { DemoPage } from "./demo";
import { dashboardCss } from "./styles";

/** Serves a built bundle with a strong ETag; `If-None-Match` gets a 304. */
function serveAsset(asset: Asset, cacheControl: string) {
  return (c: { req: { header(name: string): string | undefined } }) => {
    const headers = {
      "Content-Type": asset.type,
      "Cache-Control": cacheControl,
      ETag: asset.etag,
      "X-Content-Type-Options": "nosniff",
      // The snippet is loaded cross-origin by customer sites (and by SRI checks).
      "Access-Control-Allow-Origin": "*",
      "Cross-Origin-Resource-Policy": "cross-origin",
    };
    if (c.req.header("if-none-match") === asset.etag) return new Response(null, { status: 304, headers });
    return new Response(asset.body, { headers });
  };
}

/**
 * The dashboard's policy: only our own scripts and styles, no framing, no plugins. Tracked data is
 * attacker-controlled, so the CSP is the second line behind escaping.
 */
const dashboardHeaders = secureHeaders({
  contentSecurityPolicy: {
    defaultSrc: ["'self'"],
    scriptSrc: ["'self'"],
    styleSrc: ["'self'"],
    imgSrc: ["'self'", "data:"],
    connectSrc: ["'self'"],
    objectSrc: ["'none'"],
    baseUri: ["'none'"],
    formAction: ["'self'"],
    frameAncestors: ["'none'"],
  },
  xFrameOptions: "DENY",
  referrerPolicy: "same-origin",
  crossOriginResourcePolicy: "same-origin",
});

export const web = new Hono<AppEnv>()
  // A day of caching, then revalidation by ETag: site owners get fixes within a day.
  .get("/s.js", serveAsset(snippet, "public, max-age=86400, stale-while-revalidate=604800"))
  // Personalization, which s.js loads on pages with slots (kept out of s.js for its byte budget).
  .get("/s/slots.js", serveAsset(slotsJs, "public, max-age=86400, stale-while-revalidate=604800"))
  .get("/demo", (c) => {
    // The demo shop exists only where a demo write key is configured (local development).
    if (!c.env.DEMO_WRITE_KEY) return c.notFound();
    return c.html(<DemoPage writeKey={c.env.DEMO_WRITE_KEY} />);
  })
  .use("/dashboard/*", dashboardHeaders)
  .use("/dashboard", dashboardHeaders)
  .get("/dashboard/app.js", serveAsset(dashboardJs, "no-cache"))
  .get("/dashboard/app.css", (c) =>
    c.body(dashboardCss, 200, { "Content-Type": "text/css; charset=utf-8", "Cache-Control": "no-cache" }),
  )
  // Every /dashboard path is the same shell (deep links: the client routes by URL).
  .get("/dashboard", shell)
  .get("/dashboard/*", shell)
  .get("/", (c) => c.redirect("/dashboard"));

function shell(c: Context<AppEnv>) {
  c.header("Cache-Control", "no-store");
  return c.html(
    <DashboardShell
      error={c.req.query("error")?.slice(0, 20)}
      signedIn={getCookie(c, "tessera_session") !== undefined}
    />,
  );
}
