/**
 * Host-based edge rewriting, the production form of the proxy. A site's `proxyHost` (say
 * `www.shop.example`, routed to the Worker by a Workers route or a Custom Domain) belongs to the
 * site in full: every path and method is proxied to its `originUrl`, and nothing of Tessera (no
 * `/api`, no `/dashboard`, no `/v1`, no `/s.js`) is served there. The customer's pages, and every
 * script they load, then live on an origin that never holds a dashboard session (the session
 * cookie is host-only, set by the Worker's own hostname).
 */
import type { MiddlewareHandler } from "hono";
import { z } from "zod";
import type { AppEnv } from "../env";
import { ApiError } from "../lib/errors";
import { withDeadline } from "./decide";
import { type ProxyOptions, proxySite, rememberOrigin } from "./proxy";

/** How long an isolate trusts what it read about a hostname (a new or changed proxyHost takes effect within this). */
export const PROXY_HOST_TTL_MS = 30_000;
const MAX_CACHED_HOSTS = 1_000;
const LOOKUP_DEADLINE_MS = 1_000;

// RFC 1123 labels: letters, digits and inner hyphens, 1–63 characters each.
const dnsName = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * A site's proxy hostname: a lowercase DNS name of at least two labels, without scheme, port, path
 * or trailing dot. Upper case and one trailing dot are normalised away (hostnames are
 * case-insensitive and `example.com.` is the same name), anything else is refused.
 */
export const proxyHostSchema = z
  .string()
  .trim()
  .max(254)
  .transform((host) => host.toLowerCase().replace(/\.$/, ""))
  .refine((host) => dnsName.test(host), {
    message: "Expected a hostname like www.shop.example (no scheme, port or path)",
  })
  // An all-numeric last label is an IPv4 address, which no route or Custom Domain can name.
  .refine((host) => !/\.\d+$/.test(host), { message: "Expected a hostname, not an IP address" });

/** The hostname a request was sent to, normalised as proxy hosts are stored. */
export function requestHost(url: string): string {
  return new URL(url).hostname.replace(/\.$/, "");
}

interface HostEntry {
  siteId: string | null;
  at: number;
}

/**
 * hostname → proxied site id (null: not a proxy host), per isolate. The Worker's own hostnames
 * are looked up like any other, so the normal path costs one indexed D1 read per host per TTL.
 * Bounded: when full, the entry stored longest ago goes (a Map iterates in insertion order).
 * Concurrent misses each read D1 rather than share one in-flight read: workerd cancels a promise's
 * continuations when the request that started its I/O ends first.
 */
export class HostCache {
  private readonly entries = new Map<string, HostEntry>();

  constructor(
    private readonly ttlMs = PROXY_HOST_TTL_MS,
    private readonly maxEntries = MAX_CACHED_HOSTS,
  ) {}

  /** The site proxied on `host`, from the cache or else `load`; when `load` fails, a stale entry still answers. */
  async get(host: string, now: number, load: (host: string) => Promise<string | null>): Promise<string | null> {
    const cached = this.entries.get(host);
    if (cached && now - cached.at < this.ttlMs) return cached.siteId;
    try {
      const siteId = await load(host);
      this.set(host, siteId, now);
      return siteId;
    } catch (err) {
      if (cached) return cached.siteId;
      throw err;
    }
  }

  /** Drops what this isolate knows about hostnames (after a site's proxyHost changed). */
  forget(...hosts: (string | null | undefined)[]): void {
    for (const host of hosts) if (host) this.entries.delete(host);
  }

  /** How many hostnames are cached. */
  get size(): number {
    return this.entries.size;
  }

  private set(host: string, siteId: string | null, now: number): void {
    this.entries.delete(host);
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(host, { siteId, at: now });
  }
}

/** This isolate's host cache (shared by every request it serves). */
export const proxyHosts = new HostCache();

/** The hostname lookup, exported for the query-plan test. */
export const PROXY_HOST_SQL = "SELECT id, origin_url FROM sites WHERE proxy_host = ?";

/**
 * The site whose `proxyHost` is `host`, or null. Served by `sites_proxy_host_uq`; the same row's
 * origin primes the proxy's origin cache, so a cold proxied page costs one read, not two.
 */
export async function siteForHost(d1: D1Database, host: string, now: number): Promise<string | null> {
  const row = await d1.prepare(PROXY_HOST_SQL).bind(host).first<{ id: string; origin_url: string | null }>();
  if (!row) return null;
  rememberOrigin(row.id, row.origin_url, now);
  return row.id;
}

/**
 * The app's first middleware: a request to a site's proxy host is proxied in full and never
 * reaches Tessera's own routes; any other request continues untouched. When the hostname cannot
 * be classified (D1 down, nothing cached) the answer is a 503 rather than Tessera's routes, which
 * must never be served on a customer's hostname.
 */
export function proxyHostRouter(options: ProxyOptions & { cache?: HostCache } = {}): MiddlewareHandler<AppEnv> {
  const cache = options.cache ?? proxyHosts;
  return async (c, next) => {
    const now = Date.now();
    const host = requestHost(c.req.url);
    let siteId: string | null;
    try {
      siteId = await cache.get(host, now, (h) => withDeadline(siteForHost(c.env.DB, h, now), LOOKUP_DEADLINE_MS));
    } catch {
      throw new ApiError("unavailable", "Host lookup failed", { headers: { "Retry-After": "5" } });
    }
    if (siteId === null) return next();
    return proxySite(c, siteId, "", options.fetchOrigin);
  };
}
