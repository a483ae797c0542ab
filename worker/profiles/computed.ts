/**
 * Computed traits, kept incrementally: each event updates them in O(1) and a merge combines two
 * sets of them, so nothing ever rescans a profile's history. Times are epoch ms here; the API
 * renders them as ISO strings.
 *
 * Definitions:
 * - sessions: a new `context.sessionId`; without one, activity after 30 minutes of inactivity.
 *   Events that arrive out of order can't split or join sessions after the fact (approximate).
 * - page_views: page and screen calls.
 * - event_counts: track calls by event name, for the first 200 names; later names count under
 *   `(other)`.
 * - total_revenue: `properties.revenue` of any track call; for "Order Completed" (any case,
 *   space/underscore/dash) `properties.total` when there is no revenue. orders: "Order Completed"
 *   calls. Rounded to cents.
 * - first_touch / last_touch: the earliest / latest event that carried a campaign
 *   (`context.campaign`: source, medium, name) or a referrer from another host.
 * - last_page: the latest page call's url, path and title. devices / browsers: the last 10
 *   distinct values from `context.device`. country: `context.geo.country` of the latest event.
 */
import { z } from "zod";
import type { NormalizedEvent } from "../wire/queue";

const touchSchema = z.object({
  source: z.string().nullable(),
  medium: z.string().nullable(),
  campaign: z.string().nullable(),
  referrer: z.string().nullable(),
  at: z.number(),
});
export type Touch = z.infer<typeof touchSchema>;

const pageSchema = z.object({
  url: z.string().nullable(),
  path: z.string().nullable(),
  title: z.string().nullable(),
  at: z.number(),
});

/** The stored shape; anything unreadable in a stored value falls back to its empty default. */
export const computedSchema = z.object({
  first_seen: z.number().optional().catch(undefined),
  last_seen: z.number().optional().catch(undefined),
  sessions: z.number().catch(0).default(0),
  last_session: z.string().optional().catch(undefined),
  last_activity: z.number().optional().catch(undefined),
  page_views: z.number().catch(0).default(0),
  event_counts: z.record(z.string(), z.number()).catch({}).default({}),
  total_revenue: z.number().catch(0).default(0),
  orders: z.number().catch(0).default(0),
  first_touch: touchSchema.optional().catch(undefined),
  last_touch: touchSchema.optional().catch(undefined),
  last_page: pageSchema.optional().catch(undefined),
  devices: z.array(z.string()).catch([]).default([]),
  browsers: z.array(z.string()).catch([]).default([]),
  country: z.string().optional().catch(undefined),
  country_at: z.number().optional().catch(undefined),
});
export type Computed = z.infer<typeof computedSchema>;

export function parseComputed(value: unknown): Computed {
  const parsed = computedSchema.safeParse(value ?? {});
  return parsed.success ? parsed.data : computedSchema.parse({});
}

const SESSION_GAP_MS = 30 * 60 * 1000;
const MAX_EVENT_NAMES = 200;
const MAX_SET = 10;
export const OTHER_EVENTS = "(other)";
const orderCompleted = /^order[\s_-]?completed$/i;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const text = (v: unknown, max = 500): string | null =>
  typeof v === "string" && v.trim() !== "" ? v.trim().slice(0, max) : typeof v === "number" ? String(v) : null;
const amount = (v: unknown): number | undefined => {
  const n = typeof v === "number" ? v : typeof v === "string" && v.trim() !== "" ? Number(v) : Number.NaN;
  return Number.isFinite(n) ? n : undefined;
};
const cents = (n: number) => Math.round(n * 100) / 100;

function hostOf(url: string | null): string | null {
  if (!url) return null;
  try {
    return new URL(url).hostname;
  } catch {
    return null;
  }
}

function pageOf(event: NormalizedEvent) {
  const ctxPage = isRecord(event.context.page) ? event.context.page : {};
  const props = event.properties;
  const url = text(props.url, 2048) ?? text(ctxPage.url, 2048);
  let path = text(props.path, 2048) ?? text(ctxPage.path, 2048);
  if (!path && url) {
    try {
      path = new URL(url).pathname;
    } catch {}
  }
  return {
    url,
    path,
    title: text(props.title) ?? text(ctxPage.title),
    referrer: text(props.referrer, 2048) ?? text(ctxPage.referrer, 2048),
  };
}

function touchOf(event: NormalizedEvent): Touch | null {
  const campaign = isRecord(event.context.campaign) ? event.context.campaign : {};
  const page = pageOf(event);
  const referrerHost = hostOf(page.referrer);
  const external = referrerHost !== null && referrerHost !== hostOf(page.url);
  const source = text(campaign.source, 200);
  const medium = text(campaign.medium, 200);
  const name = text(campaign.name, 200) ?? text(campaign.campaign, 200);
  if (!source && !medium && !name && !external) return null;
  return {
    source: source ?? (external ? referrerHost : null),
    medium: medium ?? (external && !source ? "referral" : null),
    campaign: name,
    referrer: external ? page.referrer : null,
    at: event.timestamp,
  };
}

/** Adds to a bounded set, most recent last. */
function remember(list: string[], value: string | null): string[] {
  if (!value) return list;
  const next = list.filter((v) => v !== value);
  next.push(value);
  return next.slice(-MAX_SET);
}

/** Updates computed traits with one event (in place). */
export function applyEvent(c: Computed, event: NormalizedEvent): void {
  const t = event.timestamp;
  c.first_seen = c.first_seen === undefined ? t : Math.min(c.first_seen, t);
  c.last_seen = c.last_seen === undefined ? t : Math.max(c.last_seen, t);

  const sessionId = text(event.context.sessionId, 200);
  if (sessionId) {
    if (sessionId !== c.last_session) {
      c.sessions += 1;
      c.last_session = sessionId;
    }
  } else if (c.last_activity === undefined || t - c.last_activity > SESSION_GAP_MS) {
    c.sessions += 1;
  }
  c.last_activity = c.last_activity === undefined ? t : Math.max(c.last_activity, t);

  if (event.type === "page" || event.type === "screen") {
    c.page_views += 1;
    const page = pageOf(event);
    if (!c.last_page || t >= c.last_page.at) {
      c.last_page = { url: page.url, path: page.path, title: page.title ?? text(event.name), at: t };
    }
  }

  if (event.type === "track" && event.event) {
    const names = Object.keys(c.event_counts);
    const key =
      event.event in c.event_counts || names.length < MAX_EVENT_NAMES ? event.event.slice(0, 200) : OTHER_EVENTS;
    c.event_counts[key] = (c.event_counts[key] ?? 0) + 1;
    const isOrder = orderCompleted.test(event.event.trim());
    const revenue = amount(event.properties.revenue) ?? (isOrder ? amount(event.properties.total) : undefined);
    if (revenue !== undefined) c.total_revenue = cents(c.total_revenue + revenue);
    if (isOrder) c.orders += 1;
  }

  const touch = touchOf(event);
  if (touch) {
    if (!c.first_touch || touch.at < c.first_touch.at) c.first_touch = touch;
    if (!c.last_touch || touch.at >= c.last_touch.at) c.last_touch = touch;
  }

  const device = isRecord(event.context.device) ? event.context.device : {};
  const kind = [text(device.os, 100), text(device.deviceType ?? device.type, 100)].filter(Boolean).join(" ");
  c.devices = remember(c.devices, kind || null);
  c.browsers = remember(c.browsers, text(device.browser, 100));

  const geo = isRecord(event.context.geo) ? event.context.geo : {};
  const country = text(geo.country, 100);
  if (country && (c.country_at === undefined || t >= c.country_at)) {
    c.country = country;
    c.country_at = t;
  }
}

/** Combines a merged-away profile's computed traits into the survivor's (in place). */
export function combineComputed(w: Computed, l: Computed): void {
  const min = (a?: number, b?: number) => (a === undefined ? b : b === undefined ? a : Math.min(a, b));
  const max = (a?: number, b?: number) => (a === undefined ? b : b === undefined ? a : Math.max(a, b));
  w.first_seen = min(w.first_seen, l.first_seen);
  w.last_seen = max(w.last_seen, l.last_seen);
  w.sessions += l.sessions;
  if ((l.last_activity ?? 0) > (w.last_activity ?? 0)) {
    w.last_activity = l.last_activity;
    w.last_session = l.last_session;
  }
  w.page_views += l.page_views;
  for (const [name, n] of Object.entries(l.event_counts)) {
    const key = name in w.event_counts || Object.keys(w.event_counts).length < MAX_EVENT_NAMES ? name : OTHER_EVENTS;
    w.event_counts[key] = (w.event_counts[key] ?? 0) + n;
  }
  w.total_revenue = cents(w.total_revenue + l.total_revenue);
  w.orders += l.orders;
  if (l.first_touch && (!w.first_touch || l.first_touch.at < w.first_touch.at)) w.first_touch = l.first_touch;
  if (l.last_touch && (!w.last_touch || l.last_touch.at > w.last_touch.at)) w.last_touch = l.last_touch;
  if (l.last_page && (!w.last_page || l.last_page.at > w.last_page.at)) w.last_page = l.last_page;
  for (const d of l.devices) w.devices = remember(w.devices, d);
  for (const b of l.browsers) w.browsers = remember(w.browsers, b);
  if (l.country && (w.country_at === undefined || (l.country_at ?? 0) > w.country_at)) {
    w.country = l.country;
    w.country_at = l.country_at;
  }
}

/** Removes a split-off profile's additive totals from the survivor (unmerge). */
export function subtractComputed(w: Computed, l: Computed): void {
  w.sessions = Math.max(0, w.sessions - l.sessions);
  w.page_views = Math.max(0, w.page_views - l.page_views);
  for (const [name, n] of Object.entries(l.event_counts)) {
    if (!(name in w.event_counts)) continue;
    const left = w.event_counts[name] - n;
    if (left > 0) w.event_counts[name] = left;
    else delete w.event_counts[name];
  }
  w.total_revenue = Math.max(0, cents(w.total_revenue - l.total_revenue));
  w.orders = Math.max(0, w.orders - l.orders);
}

/** Computed traits as the API shows them: times as ISO strings, internals left out. */
export function computedJson(c: Computed): Record<string, unknown> {
  const iso = (ms?: number) => (ms === undefined ? null : new Date(ms).toISOString());
  const stamped = <T extends { at: number }>(v?: T) => (v ? { ...v, at: iso(v.at) } : null);
  return {
    first_seen: iso(c.first_seen),
    last_seen: iso(c.last_seen),
    sessions: c.sessions,
    page_views: c.page_views,
    event_counts: c.event_counts,
    total_revenue: c.total_revenue,
    orders: c.orders,
    first_touch: stamped(c.first_touch),
    last_touch: stamped(c.last_touch),
    last_page: stamped(c.last_page),
    devices: c.devices,
    browsers: c.browsers,
    country: c.country ?? null,
  };
}
