import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { runScheduled } from "../../worker/segments/scheduled";
import { api } from "../helpers/api";
import { makeSiteRow, page, run, T0, uid } from "./factory";

const DAY = 86_400_000;

/** The bench's segments (bench/inproc.ts), so counters and re-check times are paid as there. */
const SEGMENTS = [
  { key: "rows_enterprise", name: "Enterprise plan", rule: { trait: "plan", op: "eq", value: "enterprise" } },
  {
    key: "rows_buyers",
    name: "Ordered in the last 30 days",
    rule: { event: "Order Completed", count: { op: "gte", value: 1 }, within: "30d" },
  },
  {
    key: "rows_engaged",
    name: "5+ page views in 7 days",
    rule: { page: true, count: { op: "gte", value: 5 }, within: "7d" },
  },
];

beforeAll(async () => {
  for (const s of SEGMENTS) {
    const res = await api("/api/segments", { body: s });
    if (res.status !== 201) throw new Error(`segment ${s.key}: ${res.status} ${await res.text()}`);
  }
});

async function checkOf(profileAnon: string): Promise<number | null> {
  const row = await env.DB.prepare(
    `SELECT c.check_at FROM segment_checks c JOIN identities i ON i.profile_id = c.profile_id
     WHERE i.type = 'anonymous_id' AND i.value = ? AND c.segment_key = 'rows_engaged'`,
  )
    .bind(profileAnon)
    .first<{ check_at: number }>();
  return row?.check_at ?? null;
}

describe("rows written by the pipeline", () => {
  it("writes at most 6.1 rows per page view on 20 existing profiles, one view each (the bench's case)", async () => {
    const site = await makeSiteRow();
    const anons = Array.from({ length: 20 }, () => uid("a"));
    await run(
      site,
      anons.map((a, i) => page({ anonymousId: a, timestamp: T0 + i })),
      T0 + 60_000,
    );
    const result = await run(
      site,
      anons.map((a, i) => page({ anonymousId: a, timestamp: T0 + 1000 + i, properties: { path: `/p/${i}` } })),
      T0 + 120_000,
    );
    expect(result.stored).toBe(20);
    // events 3 (row, primary key, events_profile_time_idx) + profile UPDATE 2 (row,
    // contacts_last_seen_idx) + page-view counter 1 + the batch's share of the `events` metric.
    expect(result.rowsWritten / 20).toBeLessThanOrEqual(6.1);
  });

  it("writes at most 4 rows per page view when a batch holds 5 views per existing profile", async () => {
    const site = await makeSiteRow();
    const anons = Array.from({ length: 4 }, () => uid("a"));
    // Already engaged (5 views), so the measured batch changes no membership.
    const warm = anons.flatMap((a, j) =>
      Array.from({ length: 5 }, (_, i) => page({ anonymousId: a, timestamp: T0 + j * 10 + i })),
    );
    await run(site, warm, T0 + 60_000);
    const views = Array.from({ length: 20 }, (_, i) => page({ anonymousId: anons[i % 4], timestamp: T0 + 1000 + i }));
    const result = await run(site, views, T0 + 120_000);
    expect(result.stored).toBe(20);
    expect(result.rowsWritten / 20).toBeLessThanOrEqual(4);
  });

  it("keeps a stored re-check when a later page view would only move it later", async () => {
    const site = await makeSiteRow();
    const anon = uid("a");
    await run(site, [page({ anonymousId: anon, timestamp: T0 })], T0 + 60_000);
    const first = await checkOf(anon);
    expect(first).not.toBeNull();
    await run(site, [page({ anonymousId: anon, timestamp: T0 + 2 * DAY })], T0 + 2 * DAY + 60_000);
    expect(await checkOf(anon)).toBe(first);
  });

  it("moves a re-check forward once the cron has evaluated it at its due time", async () => {
    const site = await makeSiteRow();
    const anon = uid("a");
    await run(site, [page({ anonymousId: anon, timestamp: T0 })], T0 + 60_000);
    await run(site, [page({ anonymousId: anon, timestamp: T0 + 2 * DAY })], T0 + 2 * DAY + 60_000);
    const due = (await checkOf(anon)) as number;
    await runScheduled(env, due);
    const next = await checkOf(anon);
    expect(next).not.toBeNull();
    expect(next as number).toBeGreaterThan(due);
  });
});
