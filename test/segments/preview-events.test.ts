/**
 * Previews of event conditions no segment counts yet read `events` once per condition (a grouped
 * pass, sql.ts `EventScans`) instead of counting each profile's events in turn. These tests hold
 * the new path to the old one — same members for property filters, windows, counts (including
 * counts that 0 satisfies) and events stored under merged-away ids — and to what saving the
 * segment actually makes members.
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Condition } from "../../worker/segments/rule";
import { previewRule } from "../../worker/segments/service";
import { compileHits, compileRule, prepare } from "../../worker/segments/sql";
import { compileSegment } from "../../worker/segments/store";
import { api } from "../helpers/api";
import { DAY, HOUR, MIN, makeEvent, seedEvents, seedProfiles, T0, uniqueKey } from "./factories";

// Names no other test in this file's database uses, so counts are this file's profiles only.
const ADDED = uniqueKey("Scan Added");
const ORDERED = uniqueKey("Scan Ordered");
const PREFIX = "prf_scan_";

function prng(seed: number) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const rand = prng(99);
const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)];

/**
 * 80 profiles, 10 of them merged away into survivors; events land on live and merged-away ids
 * alike (as they were stored before the merge), over the 10 days before T0 and a few after.
 */
async function seedPopulation(): Promise<void> {
  const seeds = Array.from({ length: 80 }, (_, i) => ({
    id: `${PREFIX}${String(i).padStart(3, "0")}`,
    traits: { plan: pick(["pro", "free"]) },
    email: `scan${i}@shop.example`,
    lastSeenAt: T0 - i * MIN,
    mergedInto: i >= 70 ? `${PREFIX}${String(i - 70).padStart(3, "0")}` : null,
  }));
  await seedProfiles(seeds);
  const rows = seeds.flatMap((s) =>
    Array.from({ length: Math.floor(rand() * 7) }, () => {
      const timestamp = T0 - Math.floor(rand() * 10 * DAY) + (rand() < 0.05 ? HOUR : 0);
      const kind = rand();
      const event =
        kind < 0.5
          ? makeEvent({ event: ADDED, properties: { sku: pick(["a", "b", "c"]), price: pick([5, 20, 99]) }, timestamp })
          : kind < 0.7
            ? makeEvent({ event: ORDERED, properties: { total: pick([10, 300]) }, timestamp })
            : makeEvent({ type: "page", event: null, properties: { path: pick(["/docs/a", "/pricing"]) }, timestamp });
      return { profileId: s.id, event };
    }),
  );
  await seedEvents(rows);
}

const rules: Condition[] = [
  { event: ADDED },
  { event: ADDED, within: "2h" },
  { event: ADDED, count: { op: "gte", value: 2 }, within: "7d" },
  { event: ADDED, count: { op: "eq", value: 1 }, within: "3d" },
  // Counts that 0 satisfies: profiles without any matching event qualify.
  { event: ADDED, count: { op: "lt", value: 2 }, within: "7d" },
  { event: ORDERED, count: { op: "neq", value: 1 } },
  { not: { event: ORDERED, within: "1d" } },
  { event: ADDED, where: [{ property: "sku", op: "in", value: ["a", "b"] }], count: { op: "gte", value: 2 } },
  { event: ADDED, where: [{ property: "price", op: "gte", value: 20 }], within: "30m" },
  { page: true, where: [{ property: "path", op: "starts_with", value: "/docs" }], within: "7d" },
  // The same matcher with two windows, and a trait condition that drives the walk.
  {
    all: [{ event: ADDED, within: "1d" }, { not: { event: ADDED, count: { op: "gte", value: 3 }, within: "7d" } }],
  },
  {
    all: [
      { trait: "plan", op: "eq", value: "pro" },
      { event: ORDERED, count: { op: "lte", value: 1 }, within: "7d" },
    ],
  },
  {
    any: [
      { event: ORDERED, within: "2h" },
      { page: true, count: { op: "gte", value: 2 } },
    ],
  },
];

/** Live profiles the rule selects with every uncounted condition as a correlated count (the old path). */
async function correlatedIds(rule: Condition): Promise<string[]> {
  const seg = await compileSegment({ key: "x", name: "x", rule, updatedAt: 0 });
  const src = { matcherOf: seg.matcherOf, counted: () => false };
  const { results } = await prepare(
    env.DB,
    (p) =>
      `SELECT p.id FROM profiles p WHERE p.merged_into IS NULL AND p.id LIKE '${PREFIX}%' AND ${compileRule(rule, src, p, T0)} ORDER BY p.id`,
  ).all<{ id: string }>();
  return results.map((r) => r.id);
}

/**
 * Live profiles the rule selects through the preview's passes over `events`: over the whole table,
 * or (`narrow`) over the timelines of the profiles its trait conditions select.
 */
async function scannedIds(rule: Condition, narrow: boolean): Promise<string[]> {
  const seg = await compileSegment({ key: "x", name: "x", rule, updatedAt: 0 });
  const src = { matcherOf: seg.matcherOf, counted: () => false };
  const { results } = await prepare(
    env.DB,
    (p) => `${compileHits(rule, src, p, T0, narrow)} SELECT pid FROM hits WHERE pid LIKE '${PREFIX}%' ORDER BY pid`,
  ).all<{ pid: string }>();
  return results.map((r) => r.pid);
}

describe("previews of event conditions no segment counts", () => {
  it("selects the same members with one pass over events as with a count per profile", async () => {
    await seedPopulation();
    let mixed = 0;
    for (const rule of rules) {
      const expected = await correlatedIds(rule);
      expect(await scannedIds(rule, false), JSON.stringify(rule)).toEqual(expected);
      expect(await scannedIds(rule, true), JSON.stringify(rule)).toEqual(expected);
      if (expected.length > 0 && expected.length < 70) mixed++;
    }
    // Agreement on empty or full results would prove little.
    expect(mixed).toBeGreaterThan(rules.length / 2);
  });

  it("counts events stored under an id that was merged into the profile", async () => {
    const event = uniqueKey("Merged Event");
    const [survivor, merged] = await seedProfiles([{ lastSeenAt: T0 }, {}]);
    await env.DB.prepare("UPDATE profiles SET merged_into = ? WHERE id = ?").bind(survivor, merged).run();
    await seedEvents([
      { profileId: survivor, event: makeEvent({ event, timestamp: T0 - HOUR }) },
      { profileId: merged, event: makeEvent({ event, timestamp: T0 - 2 * HOUR }) },
    ]);
    const preview = await previewRule(env.DB, { event, count: { op: "gte", value: 2 }, within: "1d" }, T0);
    expect(preview.count).toBe(1);
    expect(preview.sample.map((s) => s.id)).toEqual([survivor]);
  });

  it("counts a rule narrowed by a rare trait from the events of the profiles that have it", async () => {
    const event = uniqueKey("Narrowed Event");
    const tier = uniqueKey("tier");
    const [vip, other] = await seedProfiles([{ traits: { tier } }, { traits: { tier: "basic" } }]);
    await seedEvents(
      [vip, vip, other, other].map((profileId) => ({ profileId, event: makeEvent({ event, timestamp: T0 - HOUR }) })),
    );
    const rule: Condition = {
      all: [
        { trait: "tier", op: "eq", value: tier },
        { event, count: { op: "gte", value: 2 }, within: "1d" },
      ],
    };
    const preview = await previewRule(env.DB, rule, T0);
    expect(preview.count).toBe(1);
    expect(preview.sample.map((s) => s.id)).toEqual([vip]);
  });

  it("samples the ten most recently seen members", async () => {
    const event = uniqueKey("Sampled Event");
    const ids = await seedProfiles(Array.from({ length: 12 }, (_, i) => ({ lastSeenAt: T0 - i * HOUR })));
    await seedEvents(ids.map((profileId) => ({ profileId, event: makeEvent({ event, timestamp: T0 - MIN }) })));
    const preview = await previewRule(env.DB, { event, within: "1h" }, T0);
    expect(preview.count).toBe(12);
    expect(preview.sample.map((s) => s.id)).toEqual(ids.slice(0, 10));
  });

  it("answers a count of 0 and an empty sample when no profile matches", async () => {
    const preview = await previewRule(env.DB, { event: uniqueKey("Never Sent"), within: "7d" }, T0);
    expect(preview).toEqual({ count: 0, sample: [] });
  });

  it("previews as many profiles as saving the segment makes members", async () => {
    const event = uniqueKey("Saved Event");
    const ids = await seedProfiles([{}, {}, {}]);
    const now = Date.now();
    await seedEvents([
      { profileId: ids[0], event: makeEvent({ event, properties: { price: 30 }, timestamp: now - HOUR }) },
      { profileId: ids[0], event: makeEvent({ event, properties: { price: 40 }, timestamp: now - 2 * HOUR }) },
      { profileId: ids[1], event: makeEvent({ event, properties: { price: 50 }, timestamp: now - HOUR }) },
      { profileId: ids[2], event: makeEvent({ event, properties: { price: 5 }, timestamp: now - HOUR }) },
    ]);
    const rule = {
      event,
      where: [{ property: "price", op: "gte", value: 20 }],
      count: { op: "gte", value: 2 },
      within: "7d",
    };
    const preview = (await (await api("/api/segments/preview", { body: { rule } })).json()) as {
      count: number;
      sample: { id: string }[];
    };
    const key = uniqueKey("saved");
    const saved = await api("/api/segments", { body: { key, name: "Saved", rule } });
    const { memberCount } = (await saved.json()) as { memberCount: number };
    expect(preview.count).toBe(1);
    expect(memberCount).toBe(preview.count);
    expect(preview.sample.map((s) => s.id)).toEqual([ids[0]]);
  });
});
