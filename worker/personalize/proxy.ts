/**
 * Edge rewriting: proxies a site's `originUrl` and streams HTML through HTMLRewriter, filling each
 * `[data-tessera-slot]` element with the visitor's variant before the page reaches the browser
 * (no flicker, no JavaScript needed). Two ways in: the site's own `proxyHost` (production,
 * personalize/hosts.ts) and `/p/:siteId/*` (local development only, behind `ALLOW_PATH_PROXY`).
 */
import { type Context, Hono } from "hono";
import { routePath } from "hono/route";
import { z } from "zod";
import type { AppEnv } from "../env";
import { ApiError } from "../lib/errors";
import { gpcOptOut } from "../lib/gpc";
import {
  type Decision,
  decideSlot,
  defaultDecision,
  resolveVisitor,
  UNKNOWN_VISITOR,
  type Visitor,
  withDeadline,
} from "./decide";
import { DECISION_DEADLINE_MS } from "./edge";
import { recordExposures } from "./exposures";
import { slotCache, slotKey } from "./slots";

/** The snippet's first-party anonymous-id cookie. */
export const VISITOR_COOKIE = "tsr_aid";
const VISITOR_COOKIE_MAX_AGE = 31_536_000;
/** The dashboard's session cookie: never forwarded to (or settable by) a proxied origin. */
const SESSION_COOKIE = "tessera_session";
const SITE_CACHE_TTL_MS = 5_000;

const siteIdParam = z.string().regex(/^[A-Za-z0-9_]{1,100}$/);
const cookieValue = /^[A-Za-z0-9-]{1,100}$/;

// RFC 9110 §7.6.1: connection-specific fields are not forwarded by proxies.
const HOP_BY_HOP = [
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
];

/** A copy of `headers` without hop-by-hop fields (including those the Connection header names). */
export function withoutHopByHop(headers: Headers): Headers {
  const out = new Headers(headers);
  const named = (headers.get("connection") ?? "").split(",").map((h) => h.trim().toLowerCase());
  for (const name of [...HOP_BY_HOP, ...named]) if (name) out.delete(name);
  return out;
}

/** Reads one cookie from a Cookie header. */
export function readCookie(header: string | undefined | null, name: string): string | undefined {
  for (const part of (header ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function withoutCookie(header: string, name: string): string {
  return header
    .split(";")
    .map((p) => p.trim())
    .filter((p) => p && p.slice(0, p.indexOf("=")).trim() !== name)
    .join("; ");
}

/**
 * The upstream URL: the origin plus the rest of the request path and its query. Built by string
 * concatenation on the origin's own scheme and host, so no request path (`//evil.example`,
 * `/../`, `@`) can point it at another host.
 */
export function upstreamUrl(originUrl: string, rest: string, search: string): URL {
  const origin = new URL(originUrl);
  const base = origin.pathname.replace(/\/+$/, "");
  const path = rest.startsWith("/") ? rest : `/${rest}`;
  const url = new URL(`${origin.origin}${base}${path}${search}`);
  if (url.origin !== origin.origin) throw new ApiError("bad_request", "Path escapes the origin");
  return url;
}

/**
 * Redirects pass through unfollowed; one to the origin itself is mapped back under the proxy
 * prefix so the visitor stays behind the proxy, any other host is left as the origin sent it.
 */
export function proxiedLocation(location: string, upstream: URL, originUrl: string, prefix: string): string {
  let target: URL;
  try {
    target = new URL(location, upstream);
  } catch {
    return location;
  }
  const origin = new URL(originUrl);
  const base = origin.pathname.replace(/\/+$/, "");
  if (target.origin !== origin.origin || !(target.pathname === base || target.pathname.startsWith(`${base}/`))) {
    return location;
  }
  return `${prefix}${target.pathname.slice(base.length) || "/"}${target.search}${target.hash}`;
}

interface CachedSite {
  originUrl: string | null;
  at: number;
}
const siteOrigins = new Map<string, CachedSite>();

/**
 * A site's origin, cached per isolate for a few seconds (a page view also fetches its assets
 * through the proxy). When D1 fails, a stale copy still serves: the origin is better than an error.
 */
async function originOf(d1: D1Database, siteId: string, now: number): Promise<string | null> {
  const cached = siteOrigins.get(siteId);
  if (cached && now - cached.at < SITE_CACHE_TTL_MS) return cached.originUrl;
  try {
    const row = await withDeadline(
      d1.prepare("SELECT origin_url FROM sites WHERE id = ?").bind(siteId).first<{ origin_url: string | null }>(),
      1_000,
    );
    const originUrl = row?.origin_url ?? null;
    rememberOrigin(siteId, originUrl, now);
    return originUrl;
  } catch (err) {
    if (cached) return cached.originUrl;
    throw err;
  }
}

/** Remembers a site's origin read elsewhere (the proxy-host lookup reads it in the same row). */
export function rememberOrigin(siteId: string, originUrl: string | null, now: number): void {
  if (siteOrigins.size >= 1_000) siteOrigins.clear();
  siteOrigins.set(siteId, { originUrl, at: now });
}

function forwardHeaders(req: Request, url: URL): Headers {
  const headers = withoutHopByHop(req.headers);
  headers.delete("host");
  // Credentials meant for Tessera (an admin bearer token) must never reach a customer's origin.
  headers.delete("authorization");
  const cookie = headers.get("cookie");
  if (cookie) {
    // On the Worker's own hostname the dashboard session shares the cookie jar: the origin must never see it.
    const kept = withoutCookie(cookie, SESSION_COOKIE);
    kept ? headers.set("cookie", kept) : headers.delete("cookie");
  }
  headers.set("x-forwarded-host", url.host);
  headers.set("x-forwarded-proto", url.protocol.replace(":", ""));
  return headers;
}

function responseHeaders(upstream: Response): Headers {
  const headers = withoutHopByHop(upstream.headers);
  const cookies = headers.getAll("set-cookie");
  if (cookies.some((c) => c.trim().startsWith(`${SESSION_COOKIE}=`))) {
    headers.delete("set-cookie");
    for (const c of cookies) if (!c.trim().startsWith(`${SESSION_COOKIE}=`)) headers.append("set-cookie", c);
  }
  return headers;
}

function isHtml(res: Response): boolean {
  return /^\s*text\/html\b/i.test(res.headers.get("content-type") ?? "");
}

type FetchOrigin = (input: Request | string | URL, init?: RequestInit) => Promise<Response>;

export interface ProxyOptions {
  /** Fetches from the origin (injectable for tests); the default is the runtime's `fetch`. */
  fetchOrigin?: FetchOrigin;
}

const runtimeFetch: FetchOrigin = (input, init) => fetch(input, init);

/**
 * The path form, mounted at `/p`: `/p/<siteId>/<path>`. It serves the customer's page on the
 * Worker's own origin, next to the dashboard and the admin API, where the page's scripts could use
 * a signed-in user's session; so it exists only where `ALLOW_PATH_PROXY` is "true" (local
 * development), and production uses the site's `proxyHost`.
 */
export function proxyApp(options: ProxyOptions = {}) {
  const fetchOrigin = options.fetchOrigin ?? runtimeFetch;

  return new Hono<AppEnv>()
    .use(async (c, next) => {
      if (c.env.ALLOW_PATH_PROXY !== "true") throw new ApiError("not_found", "No such route");
      await next();
    })
    .all("/:siteId/*", handle)
    .all("/:siteId", handle);

  function handle(c: Context<AppEnv>): Promise<Response> {
    const parsedId = siteIdParam.safeParse(c.req.param("siteId"));
    if (!parsedId.success) throw new ApiError("not_found", "No such site");
    // The proxy prefix (`/p/<siteId>`) is the request path up to the `:siteId` segment of the
    // matched route, wherever the sub-app is mounted.
    const throughSiteId = routePath(c).split("/").indexOf(":siteId") + 1;
    const prefix = new URL(c.req.url).pathname.split("/").slice(0, throughSiteId).join("/");
    return proxySite(c, parsedId.data, prefix, fetchOrigin);
  }
}

/**
 * Proxies one request to a site's origin. `prefix` is the part of the request path that names the
 * proxy (`/p/<siteId>`; empty on the site's proxy host, where every path is the origin's).
 */
export async function proxySite(
  c: Context<AppEnv>,
  siteId: string,
  prefix: string,
  fetchOrigin: FetchOrigin = runtimeFetch,
): Promise<Response> {
  const now = Date.now();
  const originUrl = await originOf(c.env.DB, siteId, now).catch(() => {
    throw new ApiError("unavailable", "Site lookup failed", { headers: { "Retry-After": "5" } });
  });
  if (!originUrl) throw new ApiError("not_found", "No such site, or it has no originUrl");

  const requestUrl = new URL(c.req.url);
  const target = upstreamUrl(originUrl, requestUrl.pathname.slice(prefix.length) || "/", requestUrl.search);
  const method = c.req.method;
  const headers = forwardHeaders(c.req.raw, requestUrl);
  // Other methods (forms, APIs of the site) pass through unchanged: only pages are personalized.
  const pageRequest = method === "GET" || method === "HEAD";

  const existing = readCookie(c.req.header("cookie"), VISITOR_COOKIE);
  const anonymousId = existing && cookieValue.test(existing) ? existing : null;
  // Started now, so that the visitor's one D1 read overlaps the origin's response time.
  // null: the lookup failed, and slots fall back to their defaults (as /v1/personalize does).
  const visitorPromise: Promise<Visitor | null> =
    method === "GET" && anonymousId
      ? withDeadline(resolveVisitor(c.env.DB, { userId: null, anonymousId }), DECISION_DEADLINE_MS).catch(() => null)
      : Promise.resolve(UNKNOWN_VISITOR);

  let upstream: Response;
  try {
    upstream = await fetchOrigin(target.toString(), {
      method,
      headers,
      body: pageRequest ? undefined : c.req.raw.body,
      redirect: "manual",
    });
  } catch {
    throw new ApiError("unavailable", "The origin did not answer", { headers: { "Retry-After": "5" } });
  }

  const outHeaders = responseHeaders(upstream);
  const location = outHeaders.get("location");
  if (location) outHeaders.set("location", proxiedLocation(location, target, originUrl, prefix));

  if (!pageRequest || !isHtml(upstream) || method === "HEAD" || upstream.body === null) {
    return new Response(upstream.body, {
      status: upstream.status,
      statusText: upstream.statusText,
      headers: outHeaders,
    });
  }

  // Under Global Privacy Control the page is still personalized (first-party content) but the
  // visit leaves no trace: no visitor cookie is set and no exposure is recorded.
  const optedOut = gpcOptOut(c.req.raw.headers);
  const visitorId = anonymousId ?? crypto.randomUUID();
  if (!anonymousId && !optedOut) {
    const secure = requestUrl.protocol === "https:" ? "; Secure" : "";
    outHeaders.append(
      "set-cookie",
      `${VISITOR_COOKIE}=${visitorId}; Path=/; Max-Age=${VISITOR_COOKIE_MAX_AGE}; SameSite=Lax${secure}`,
    );
  }
  // The page now depends on who asks: no shared cache may keep it, and its length changes.
  outHeaders.set("cache-control", "private, no-store");
  for (const name of ["content-length", "etag", "last-modified"]) outHeaders.delete(name);

  // Per slot key: the decision (null: leave the origin's markup) and whether it counts as an exposure.
  const decided = new Map<string, { decision: Decision | null; exposed: boolean }>();

  const decide = async (key: string): Promise<Decision | null> => {
    const known = decided.get(key);
    if (known) return known.decision;
    let outcome: { decision: Decision | null; exposed: boolean } = { decision: null, exposed: false };
    try {
      const slot = (await withDeadline(slotCache.get(c.env.DB, [key], now), DECISION_DEADLINE_MS)).get(key);
      const visitor = slot ? await visitorPromise : null;
      if (slot) {
        outcome = visitor
          ? { decision: decideSlot(slot, visitor, now), exposed: true }
          : { decision: defaultDecision(slot), exposed: false };
      }
    } catch {
      // Fail open: the element keeps the origin's own markup.
    }
    decided.set(key, outcome);
    return outcome.decision;
  };

  const rewriter = new HTMLRewriter()
    .on("[data-tessera-slot]", {
      async element(el) {
        const key = slotKey.safeParse(el.getAttribute("data-tessera-slot"));
        if (!key.success) return;
        const decision = await decide(key.data);
        if (!decision) return;
        if (typeof decision.content === "string") el.setInnerContent(decision.content, { html: true });
        else el.setAttribute("data-tessera-content", JSON.stringify(decision.content));
        el.setAttribute("data-tessera-variant", decision.variant);
      },
    })
    .onDocument({
      end() {
        const shown = [...decided].flatMap(([slot, { decision, exposed }]) =>
          decision && exposed ? [{ slot, decision }] : [],
        );
        if (shown.length === 0 || optedOut) return;
        recordExposures(c.env.EVENTS, executionCtx(c), {
          siteId,
          anonymousId: visitorId,
          userId: null,
          verified: false,
          decisions: shown,
          now,
          source: "proxy",
        });
      },
    });

  return rewriter.transform(
    new Response(upstream.body, { status: upstream.status, statusText: upstream.statusText, headers: outHeaders }),
  );
}

/** What exposures need from the request's ExecutionContext. */
export interface WaitUntil {
  waitUntil(promise: Promise<unknown>): void;
}

/** The request's ExecutionContext, or undefined where there is none (direct `app.request` calls). */
export function executionCtx(c: { executionCtx: WaitUntil }): WaitUntil | undefined {
  try {
    return c.executionCtx;
  } catch {
    return undefined;
  }
}
