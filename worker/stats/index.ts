/**
 * `GET /api/stats`: workspace totals for the dashboard and the benchmarks; `GET /api/stats/overview`:
 * the overview page (daily events, identified share, top events, segment sizes). Event counts
 * come from the `metrics` running totals the pipeline keeps (metrics.ts), never from `events`.
 */
import { Hono } from "hono";
import { z } from "zod";
import type { Db } from "../db";
import type { AppEnv } from "../env";
import { GPC_DROPPED_METRIC } from "../lib/gpc";
import { describe } from "../lib/openapi";
import { query } from "../lib/validate";
import {
  DAY_MS,
  dayOf,
  EVENT_METRIC_END,
  EVENT_METRIC_PREFIX,
  EVENTS_METRIC,
  IDENTIFIED_TOTAL,
  PROFILES_TOTAL,
} from "./metrics";

export const statsSchema = z.object({
  events: z.number().int(),
  profiles: z.number().int(),
  identifiedProfiles: z.number().int(),
  /** Events dropped unstored because their request carried `Sec-GPC: 1` (all time). */
  gpcDropped: z.number().int(),
});

/**
 * The running totals in one statement of primary-key reads, whatever the number of profiles or
 * events: the day-0 rows, and the `events` total as the sum of its days (the pipeline writes no
 * all-time row for it, one row fewer per batch).
 */
export async function readStats(db: Db): Promise<z.infer<typeof statsSchema>> {
  const total = (n: number) => `(SELECT value FROM metrics WHERE name = ?${n} AND day = 0)`;
  const row = await db.$client
    .prepare(
      `SELECT (SELECT sum(value) FROM metrics WHERE name = ?1) AS events, ${total(2)} AS profiles,
         ${total(3)} AS identifiedProfiles, ${total(4)} AS gpcDropped`,
    )
    .bind(EVENTS_METRIC, PROFILES_TOTAL, IDENTIFIED_TOTAL, GPC_DROPPED_METRIC)
    .first<Record<keyof z.infer<typeof statsSchema>, number | null>>();
  return {
    events: row?.events ?? 0,
    profiles: row?.profiles ?? 0,
    identifiedProfiles: row?.identifiedProfiles ?? 0,
    gpcDropped: row?.gpcDropped ?? 0,
  };
}

const overviewQuery = z.object({
  days: z.coerce.number().int().min(1).max(365).default(30),
  top: z.coerce.number().int().min(1).max(50).default(10),
});
export type OverviewQuery = z.output<typeof overviewQuery>;

export const overviewSchema = z.object({
  events: z.object({
    /** All time (as `/api/stats`). */
    total: z.number().int(),
    /** Per UTC day of event time, oldest first, one entry per day of the window (zeros included). */
    perDay: z.array(z.object({ day: z.string(), count: z.number().int() })),
  }),
  profiles: z.number().int(),
  identifiedProfiles: z.number().int(),
  /** identifiedProfiles / profiles (0 without profiles). */
  identifiedShare: z.number(),
  /** Track events by name within the window, most frequent first. */
  topEvents: z.array(z.object({ event: z.string(), count: z.number().int() })),
  /** Every segment with its current member count, largest first (at most 100). */
  segments: z.array(z.object({ key: z.string(), name: z.string(), members: z.number().int() })),
});
export type Overview = z.infer<typeof overviewSchema>;

const isoDay = (day: number) => new Date(day * DAY_MS).toISOString().slice(0, 10);

/** The dashboard overview for the `days` UTC days up to and including the day of `now`. */
export async function readOverview(db: Db, d1: D1Database, q: OverviewQuery, now: number): Promise<Overview> {
  const last = dayOf(now);
  const first = last - q.days + 1;
  const [totals, [perDay, top, segments]] = await Promise.all([
    readStats(db),
    d1.batch<Record<string, unknown>>([
      // metrics primary key (name, day)
      d1.prepare("SELECT day, value FROM metrics WHERE name = 'events' AND day BETWEEN ?1 AND ?2").bind(first, last),
      // metrics primary key: the `event:` name range; rows = names × days, no extra index on writes.
      d1
        .prepare(
          `SELECT substr(name, ?4) AS event, sum(value) AS count FROM metrics
           WHERE name >= ?1 AND name < ?2 AND day BETWEEN ?3 AND ?5
           GROUP BY name ORDER BY count DESC, name LIMIT ?6`,
        )
        .bind(EVENT_METRIC_PREFIX, EVENT_METRIC_END, first, EVENT_METRIC_PREFIX.length + 1, last, q.top),
      // memberships primary key (segment_key, profile_id): a count per segment is an index range.
      d1.prepare(
        `SELECT s.key, s.name, (SELECT count(*) FROM memberships m WHERE m.segment_key = s.key) AS members
         FROM segments s ORDER BY members DESC, s.key LIMIT 100`,
      ),
    ]),
  ]);
  const counts = new Map(perDay.results.map((r) => [Number(r.day), Number(r.value)]));
  return {
    events: {
      total: totals.events,
      perDay: Array.from({ length: q.days }, (_, i) => ({ day: isoDay(first + i), count: counts.get(first + i) ?? 0 })),
    },
    profiles: totals.profiles,
    identifiedProfiles: totals.identifiedProfiles,
    identifiedShare: totals.profiles === 0 ? 0 : Math.round((totals.identifiedProfiles / totals.profiles) * 1e4) / 1e4,
    topEvents: top.results.map((r) => ({ event: String(r.event), count: Number(r.count) })),
    segments: segments.results.map((r) => ({ key: String(r.key), name: String(r.name), members: Number(r.members) })),
  };
}

export const statsApi = new Hono<AppEnv>()
  .get("/", async (c) => c.json(await readStats(c.var.db)))
  .get("/overview", query(overviewQuery), async (c) =>
    c.json(await readOverview(c.var.db, c.env.DB, c.req.valid("query"), Date.now())),
  );

describe({
  method: "get",
  path: "/api/stats",
  tag: "Stats",
  summary: "Workspace totals",
  responses: { 200: statsSchema },
});
describe({
  method: "get",
  path: "/api/stats/overview",
  tag: "Stats",
  summary:
    "The dashboard overview: events per day over the last `days` UTC days, profiles and identified share, top track events, segment sizes",
  query: overviewQuery,
  responses: { 200: overviewSchema },
});
