import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { runScheduled } from "../../worker/segments/scheduled";
import { api } from "../helpers/api";
import { makeSiteRow, page, run, T0, uid } from "./factory";

const MINUTE = 60_000;
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

/** The stored last-seen time and its sort key (contacts_last_seen_idx) of a visitor's profile. */
async function lastSeenOf(anon: string) {
  const row = await env.DB.prepare(
    `SELECT p.last_seen_at, p.last_seen_sort FROM profiles p JOIN identities i ON i.profile_id = p.id
     WHERE i.type = 'anonymous_id' AND i.value = ?`,
  )
    .bind(anon)
    .first<{ last_seen_at: number; last_seen_sort: number }>();
  if (!row) throw new Error(`no profile for ${anon}`);
  return { at: row.last_seen_at, sort: row.last_seen_sort };
}

/** 20 visitors with one page view each at `T0 + i`, then one more each `later` ms after; returns the second batch's result. */
async function secondViews(later: number) {
  const site = await makeSiteRow();
  const anons = Array.from({ length: 20 }, () => uid("a"));
  await run(
    site,
    anons.map((a, i) => page({ anonymousId: a, timestamp: T0 + i })),
    T0 + 60_000,
  );
  return run(
    site,
    anons.map((a, i) => page({ anonymousId: a, timestamp: T0 + later + i, properties: { path: `/p/${i}` } })),
    T0 + later + 60_000,
  );
}

describe("rows written by the pipeline", () => {
  it("writes 3 rows per page view on a profile seen earlier in the visit, plus 2 per batch (20 profiles, one view each)", async () => {
    const result = await secondViews(1000);
    expect(result.stored).toBe(20);
    // Per view: the event 2 (the WITHOUT ROWID table's key B-tree, events_profile_time_idx) and
    // the profile row 1, which also holds the page-view counter (its last-seen sort key, hence
    // contacts_last_seen_idx, unchanged). Per batch: the `events` metric's day row and the
    // debugger's ring row. A counter table, a rowid `events` table or a rewritten last-seen
    // index entry would each add 20.
    expect(result.rowsWritten).toBeLessThanOrEqual(20 * 3 + 2);
  });

  it("writes 4 rows per page view on a profile back after days, plus 2 per batch (20 profiles, one view each)", async () => {
    const result = await secondViews(3 * DAY);
    expect(result.stored).toBe(20);
    // Per view: the event 2, the profile row (with the new day's counter bucket) and its moved
    // contacts_last_seen_idx entry 2. Per batch: a new day's `events` metric row (metrics is
    // WITHOUT ROWID: one entry) and the ring row.
    expect(result.rowsWritten).toBeLessThanOrEqual(20 * 4 + 2);
  });

  it("keeps the last-seen sort key while the visitor stays active within 10 minutes", async () => {
    const site = await makeSiteRow();
    const anon = uid("a");
    await run(site, [page({ anonymousId: anon, timestamp: T0 })], T0 + 60_000);
    await run(site, [page({ anonymousId: anon, timestamp: T0 + 9 * MINUTE })], T0 + 10 * MINUTE);
    expect(await lastSeenOf(anon)).toEqual({ at: T0 + 9 * MINUTE, sort: T0 });
  });

  it("moves the last-seen sort key to the exact time once the visitor is 10 minutes past it", async () => {
    const site = await makeSiteRow();
    const anon = uid("a");
    await run(site, [page({ anonymousId: anon, timestamp: T0 })], T0 + 60_000);
    await run(site, [page({ anonymousId: anon, timestamp: T0 + 9 * MINUTE })], T0 + 10 * MINUTE);
    await run(site, [page({ anonymousId: anon, timestamp: T0 + 10 * MINUTE })], T0 + 11 * MINUTE);
    expect(await lastSeenOf(anon)).toEqual({ at: T0 + 10 * MINUTE, sort: T0 + 10 * MINUTE });
  });

  it("keeps the sort key for writers that only set last_seen_at (migration 0012's triggers)", async () => {
    const id = uid("prf_");
    const sortKey = async () =>
      (
        await env.DB.prepare("SELECT last_seen_sort FROM profiles WHERE id = ?")
          .bind(id)
          .first<{ last_seen_sort: number | null }>()
      )?.last_seen_sort;
    await env.DB.prepare("INSERT INTO profiles (id, last_seen_at, created_at, updated_at) VALUES (?1, ?2, ?2, ?2)")
      .bind(id, T0)
      .run();
    expect(await sortKey()).toBe(T0);
    await env.DB.prepare("UPDATE profiles SET last_seen_at = ?2 WHERE id = ?1")
      .bind(id, T0 + 20 * MINUTE)
      .run();
    expect(await sortKey()).toBe(T0 + 20 * MINUTE);
  });

  it("writes at most 2.5 rows per page view when a batch holds 5 views per existing profile", async () => {
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
    // The events 2 each; each profile row once (4) and the 2 per-batch rows, over 20 views.
    expect(result.rowsWritten / 20).toBeLessThanOrEqual(2.5);
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
