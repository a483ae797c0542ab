/**
 * Event counters kept in the profile row (segments/counters.ts): the pure bookkeeping, and how
 * the pipeline, segment saves and unmerges keep them exact.
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { mergeProfiles, unmergeProfile } from "../../worker/identity";
import { processBatch } from "../../worker/pipeline";
import {
  addCounters,
  type Counters,
  compactCounters,
  countEvent,
  parseCounters,
  serializeCounters,
} from "../../worker/segments/counters";
import type { Matcher } from "../../worker/segments/matchers";
import { saveSegment } from "../../worker/segments/service";
import { interleaveBeforeWrite } from "../helpers/race";
import { body, makeEvent, makeSiteRow, page, profileOf, run, T0, uid } from "../pipeline/factory";

const DAY = 86_400_000;
const ID = (n: number) => `m_${String(n).padStart(24, "0")}`;
const pages: Matcher = { id: ID(1), type: "page", event: null, where: [] };
const orders: Matcher = { id: ID(2), type: "track", event: "Order Completed", where: [] };
const scope = (firstDay: number, ...list: Matcher[]) => ({ matchers: new Map(list.map((m) => [m.id, m])), firstDay });
const day = (t: number) => Math.floor(t / DAY);

async function countersOf(profileId: string): Promise<Counters> {
  const row = await env.DB.prepare("SELECT counters FROM profiles WHERE id = ?")
    .bind(profileId)
    .first<{ counters: string }>();
  return parseCounters(row?.counters);
}

/** The total a matcher holds in a profile row, across all its days. */
const total = (c: Counters, matcherId: string) => (c[matcherId] ?? []).reduce((n, b) => n + b.count, 0);

async function isMember(segment: string, profileId: string): Promise<boolean> {
  const row = await env.DB.prepare("SELECT 1 AS yes FROM memberships WHERE segment_key = ? AND profile_id = ?")
    .bind(segment, profileId)
    .first();
  return row !== null;
}

const rule = (r: unknown) => r as never;

describe("counters (in memory)", () => {
  it("counts an event into its UTC day for every matcher it matches, latest time kept", () => {
    const c: Counters = {};
    const s = scope(0, pages, orders);
    expect(countEvent(c, s, page({ timestamp: T0 }))).toBe(true);
    countEvent(c, s, page({ timestamp: T0 + 1000 }));
    countEvent(c, s, page({ timestamp: T0 + DAY }));
    expect(countEvent(c, s, makeEvent({ event: "Signed Up", timestamp: T0 }))).toBe(false);
    expect(c).toEqual({
      [pages.id]: [
        { day: day(T0), count: 2, lastAt: T0 + 1000 },
        { day: day(T0) + 1, count: 1, lastAt: T0 + DAY },
      ],
    });
  });

  it("collapses days before the earliest window into one bucket and drops matchers no segment uses", () => {
    const c: Counters = {
      [pages.id]: [
        { day: 10, count: 1, lastAt: 10 * DAY },
        { day: 11, count: 2, lastAt: 11 * DAY + 5 },
        { day: 20, count: 4, lastAt: 20 * DAY },
      ],
      [orders.id]: [{ day: 20, count: 1, lastAt: 20 * DAY }],
    };
    expect(compactCounters(c, scope(15, pages))).toBe(true);
    expect(c).toEqual({
      [pages.id]: [
        { day: -1, count: 3, lastAt: 11 * DAY + 5 },
        { day: 20, count: 4, lastAt: 20 * DAY },
      ],
    });
    expect(compactCounters(c, scope(15, pages))).toBe(false);
  });

  it("adds two profiles' counters day by day", () => {
    const a: Counters = { [pages.id]: [{ day: 5, count: 1, lastAt: 5 * DAY }] };
    addCounters(a, {
      [pages.id]: [
        { day: 3, count: 2, lastAt: 3 * DAY },
        { day: 5, count: 1, lastAt: 5 * DAY + 9 },
      ],
      [orders.id]: [{ day: 5, count: 1, lastAt: 5 * DAY }],
    });
    expect(a).toEqual({
      [pages.id]: [
        { day: 3, count: 2, lastAt: 3 * DAY },
        { day: 5, count: 2, lastAt: 5 * DAY + 9 },
      ],
      [orders.id]: [{ day: 5, count: 1, lastAt: 5 * DAY }],
    });
  });

  it("reads back what it stores, and nothing from a malformed or hostile document", () => {
    const c: Counters = { [pages.id]: [{ day: -1, count: 3, lastAt: 7 }] };
    expect(parseCounters(serializeCounters(c))).toEqual(c);
    expect(serializeCounters(c)).toBe(`{"${pages.id}":[[-1,3,7]]}`);
    for (const bad of ["", "null", "[]", "{", '{"x":[[1,2,3]]}', `{"${pages.id}":[[1,"2",3],[1,2]]}`]) {
      expect(parseCounters(bad)).toEqual({});
    }
    const hostile = parseCounters(`{"__proto__":[[1,1,1]],"constructor":[[1,1,1]]}`);
    expect(Object.keys(hostile)).toEqual([]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe("counters in the pipeline and in segment saves", () => {
  it("keeps a page view's count in its profile row, under the segment's matcher", async () => {
    const key = uid("pv-");
    await saveSegment(
      env.DB,
      { key, name: key, rule: rule({ page: true, count: { op: "gte", value: 2 } }) },
      T0,
      "create",
    );
    const site = await makeSiteRow();
    const anon = uid("a");
    await run(site, [page({ anonymousId: anon, timestamp: T0 })], T0 + 1000);
    const id = (await profileOf("anonymous_id", anon)) as string;
    expect(await isMember(key, id)).toBe(false);
    await run(site, [page({ anonymousId: anon, timestamp: T0 + 2000 })], T0 + 3000);
    const c = await countersOf(id);
    expect(Object.values(c).some((buckets) => buckets.some((b) => b.day === day(T0) && b.count === 2))).toBe(true);
    expect(await isMember(key, id)).toBe(true);
  });

  it("rebuilds collapsed days from events when a segment's window reaches further than any before it", async () => {
    const event = uid("Viewed Plan ");
    const short = uid("short-");
    await saveSegment(
      env.DB,
      { key: short, name: short, rule: rule({ event, within: "1d" }) },
      T0 - 40 * DAY,
      "create",
    );
    const site = await makeSiteRow();
    const anon = uid("a");
    // Ten days apart: by the second event the first one's day is outside every window in use.
    await run(site, [makeEvent({ anonymousId: anon, event, timestamp: T0 - 10 * DAY })], T0 - 10 * DAY + 1000);
    await run(site, [makeEvent({ anonymousId: anon, event, timestamp: T0 })], T0 + 1000);
    const id = (await profileOf("anonymous_id", anon)) as string;
    const buckets = Object.values(await countersOf(id)).find((b) => b.some((x) => x.day === -1));
    expect(buckets?.map((b) => b.day)).toEqual([-1, day(T0)]);

    const long = uid("long-");
    await saveSegment(
      env.DB,
      { key: long, name: long, rule: rule({ event, count: { op: "gte", value: 2 }, within: "30d" }) },
      T0 + 2000,
      "create",
    );
    expect(await isMember(long, id)).toBe(true);
    const rebuilt = Object.values(await countersOf(id)).find((b) => b.some((x) => x.day === day(T0 - 10 * DAY)));
    expect(rebuilt?.map((b) => b.count)).toEqual([1, 1]);
  });

  it("decides a consumer batch again when a segment is saved between its read and its write", async () => {
    const event = uid("Booked Demo ");
    const site = await makeSiteRow();
    const anon = uid("a");
    await run(site, [makeEvent({ anonymousId: anon, event, timestamp: T0 })], T0 + 1000);
    const id = (await profileOf("anonymous_id", anon)) as string;
    const key = uid("demo-twice-");
    // The consumer's write is its only batch of many statements: the segment is saved just before it.
    const racing = interleaveBeforeWrite(env.DB, 5, (db) =>
      saveSegment(db, { key, name: key, rule: rule({ event, count: { op: "gte", value: 2 } }) }, T0 + 1500, "create"),
    );
    const result = await processBatch(
      { DB: racing.db },
      [body(site, [makeEvent({ anonymousId: anon, event, timestamp: T0 + 2000 })])],
      T0 + 3000,
    );
    expect(racing.count()).toBe(1);
    // The first write was decided without the new segment's matcher and would have overwritten
    // its back-filled count: the guard refused it, and the batch was decided again.
    expect(result.attempts).toBe(2);
    const c = await countersOf(id);
    expect(Object.values(c).map((b) => b.reduce((n, x) => n + x.count, 0))).toContain(2);
    expect(await isMember(key, id)).toBe(true);
  });
});

describe("counters across merges", () => {
  it("adds the loser's counts to the survivor on merge and gives each its own back on unmerge", async () => {
    const event = uid("Added Seat ");
    const key = uid("seats-");
    await saveSegment(
      env.DB,
      { key, name: key, rule: rule({ event, count: { op: "gte", value: 3 }, within: "7d" }) },
      T0,
      "create",
    );
    const site = await makeSiteRow();
    const [a, b] = [uid("a"), uid("a")];
    await run(site, [
      makeEvent({ anonymousId: a, event, timestamp: T0 + 1 }),
      makeEvent({ anonymousId: a, event, timestamp: T0 + 2 }),
      makeEvent({ anonymousId: b, event, timestamp: T0 + 3 }),
    ]);
    const [winner, loser] = [
      (await profileOf("anonymous_id", a)) as string,
      (await profileOf("anonymous_id", b)) as string,
    ];
    const matcher = Object.keys(await countersOf(loser))[0];

    const { mergeId } = await mergeProfiles(env.DB, winner, loser, T0 + DAY);
    expect(total(await countersOf(winner), matcher)).toBe(3);
    expect(await isMember(key, winner)).toBe(true);

    await unmergeProfile(env.DB, winner, mergeId, T0 + DAY + 1000);
    expect(total(await countersOf(winner), matcher)).toBe(2);
    expect(total(await countersOf(loser), matcher)).toBe(1);
    expect(await isMember(key, winner)).toBe(false);
  });
});
