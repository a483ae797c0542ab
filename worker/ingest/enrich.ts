/**
 * Server-side enrichment of a message's `context` from the request: where (Cloudflare's `cf`
 * geolocation), on what (user agent), whether a bot sent it. The keys written here are owned by the
 * server: clients cannot set them. (A request with `Sec-GPC: 1` never gets here: see lib/gpc.ts.)
 */
import { isbot } from "isbot";
import { classifyUserAgent, type DeviceInfo } from "./ua";

export interface Geo {
  country?: string;
  region?: string;
  city?: string;
  timezone?: string;
}

/** What one request tells about all of its messages, read once. */
export interface RequestFacts {
  geo: Geo | null;
  userAgent: string | null;
}

/**
 * Context keys only the server may write (a client could otherwise claim `bot: false` or a geo).
 * `gpc` stays listed although the server no longer writes it: a stored event claiming an opt-out
 * the request did not carry would mislead whoever reads it.
 */
export const SERVER_CONTEXT_KEYS = ["geo", "device", "bot", "gpc"] as const;

// Context keys that are dropped on the way in: the raw IP is personal data we do not keep (no site
// can opt in yet), and `userHash` is a bearer credential for the user id: storing it would let
// anyone who can read events replay it as a verified identify.
const DROPPED_CONTEXT_KEYS = ["ip", "userHash"] as const;

const MAX_UA = 512;

/** Reads geolocation and the browser's user agent from the request. */
export function requestFacts(req: Request): RequestFacts {
  const cf = req.cf as Record<string, unknown> | undefined;
  let geo: Geo | null = null;
  if (cf) {
    const pick = (key: string) =>
      typeof cf[key] === "string" && cf[key] !== "" ? (cf[key] as string).slice(0, 100) : undefined;
    const found: Geo = {
      country: pick("country"),
      region: pick("region"),
      city: pick("city"),
      timezone: pick("timezone"),
    };
    const present = Object.entries(found).filter(([, v]) => v !== undefined);
    if (present.length > 0) geo = Object.fromEntries(present);
  }
  // Browsers send `Origin` with every cross-origin POST and beacon. Without one, the caller is a
  // server integration whose own User-Agent (an HTTP library, which isbot rightly calls a bot)
  // says nothing about the person, so only a message's own `context.userAgent` is classified.
  const fromBrowser = req.headers.has("origin");
  return {
    geo,
    userAgent: fromBrowser ? req.headers.get("user-agent")?.slice(0, MAX_UA) || null : null,
  };
}

/**
 * Enriches contexts for one request. The user agent classified is the message's own
 * `context.userAgent` when present (a server relaying browser events), else the request's; results
 * are memoised per distinct UA, since a batch usually carries one.
 */
export function createEnricher(facts: RequestFacts) {
  const byUa = new Map<string, { device: DeviceInfo; bot: boolean }>();
  const classify = (ua: string | null) => {
    const key = ua ?? "";
    let hit = byUa.get(key);
    if (!hit) {
      hit = { device: classifyUserAgent(ua), bot: ua !== null && isbot(ua) };
      byUa.set(key, hit);
    }
    return hit;
  };

  /** Returns the enriched context (a new object) and whether the sender looks like a bot. */
  return (context: Record<string, unknown>): { context: Record<string, unknown>; bot: boolean } => {
    const out: Record<string, unknown> = { ...context };
    for (const key of SERVER_CONTEXT_KEYS) delete out[key];
    for (const key of DROPPED_CONTEXT_KEYS) delete out[key];
    const ua =
      typeof context.userAgent === "string" && context.userAgent !== ""
        ? context.userAgent.slice(0, MAX_UA)
        : facts.userAgent;
    const { device, bot } = classify(ua);
    if (facts.geo) out.geo = facts.geo;
    out.device = device;
    out.bot = bot;
    return { context: out, bot };
  };
}

export type Enricher = ReturnType<typeof createEnricher>;
