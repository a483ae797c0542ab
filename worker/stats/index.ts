/** `GET /api/stats`: workspace totals for the dashboard overview and the benchmarks. */
import { and, count, eq, isNull } from "drizzle-orm";
import { Hono } from "hono";
import { z } from "zod";
import type { Db } from "../db";
import { metrics, profiles } from "../db/schema";
import type { AppEnv } from "../env";
import { describe } from "../lib/openapi";

export const statsSchema = z.object({
  events: z.number().int(),
  profiles: z.number().int(),
  identifiedProfiles: z.number().int(),
});

/** Reads an all-time running total kept by the pipeline (0 when none was recorded yet). */
export async function totalOf(db: Db, name: string): Promise<number> {
  const row = await db
    .select({ value: metrics.value })
    .from(metrics)
    .where(and(eq(metrics.name, name), eq(metrics.day, 0)))
    .get();
  return row?.value ?? 0;
}

export async function readStats(db: Db): Promise<z.infer<typeof statsSchema>> {
  const live = isNull(profiles.mergedInto);
  const [events, all, identified] = await Promise.all([
    totalOf(db, "events"),
    db.select({ n: count() }).from(profiles).where(live).get(),
    db
      .select({ n: count() })
      .from(profiles)
      .where(and(live, eq(profiles.identified, true)))
      .get(),
  ]);
  return { events, profiles: all?.n ?? 0, identifiedProfiles: identified?.n ?? 0 };
}

export const statsApi = new Hono<AppEnv>().get("/", async (c) => c.json(await readStats(c.var.db)));

describe({
  method: "get",
  path: "/api/stats",
  tag: "Stats",
  summary: "Workspace totals",
  responses: { 200: statsSchema },
});
