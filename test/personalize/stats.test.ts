import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { slotStatsSchema } from "../../worker/personalize/stats";
import { api } from "../helpers/api";
import { putSlot, seedProfile, seedSegment, unique } from "./seed";

const DAY = 86_400_000;
const vip = unique("vip");

async function insertEvent(profileId: string, event: string, properties: Record<string, unknown>, timestamp: number) {
  await env.DB.prepare(
    `INSERT INTO events (site_id, message_id, profile_id, type, event, properties, timestamp, received_at)
     VALUES ('site_stats', ?, ?, 'track', ?, ?, ?, ?)`,
  )
    .bind(unique("msg"), profileId, event, JSON.stringify(properties), timestamp, timestamp)
    .run();
}

const viewed = (profileId: string, slot: string, variant: string, at: number) =>
  insertEvent(profileId, "Personalization Viewed", { slot, variant, holdout: variant === "holdout" }, at);

beforeAll(async () => {
  await seedSegment(vip);
});

describe("GET /api/slots/:key/stats", () => {
  it("counts exposures, people and conversions per variant and holdout", async () => {
    const slot = unique("stats");
    const goal = unique("Goal");
    await putSlot(slot, { default: "d", rules: [{ id: "v1", segment: vip, content: "v" }], goalEvent: goal });
    const now = Date.now();
    const [a, survivor, d, e, f] = await Promise.all([1, 2, 3, 4, 5].map(() => seedProfile()));
    const mergedAway = await seedProfile({ mergedInto: survivor });

    // a: two exposures, then the goal → one person, converted.
    await viewed(a, slot, "v1", now - 5 * DAY);
    await viewed(a, slot, "v1", now - 4 * DAY);
    await insertEvent(a, goal, {}, now - 3 * DAY);
    // Exposed under an id later merged away; the goal was recorded on the survivor → converted.
    await viewed(mergedAway, slot, "v1", now - 5 * DAY);
    await insertEvent(survivor, goal, {}, now - 2 * DAY);
    // d did the goal before being exposed → not a conversion.
    await insertEvent(d, goal, {}, now - 6 * DAY);
    await viewed(d, slot, "v1", now - 5 * DAY);
    // e was held out and never converted.
    await viewed(e, slot, "holdout", now - 1 * DAY);
    // Outside the range, and another slot: not counted.
    await viewed(f, slot, "v1", now - 40 * DAY);
    await viewed(f, unique("other-slot"), "v1", now - 1 * DAY);

    const res = await api(`/api/slots/${slot}/stats`);
    expect(res.status).toBe(200);
    const stats = slotStatsSchema.parse(await res.json());
    expect(stats.goalEvent).toBe(goal);
    expect(stats.variants).toEqual([
      { variant: "holdout", exposures: 1, visitors: 1, conversions: 0, conversionRate: 0 },
      { variant: "v1", exposures: 4, visitors: 3, conversions: 2, conversionRate: 2 / 3 },
    ]);
  });

  it("reports no conversions when the slot has no goal event", async () => {
    const slot = unique("nogoal");
    await putSlot(slot, { default: "d" });
    await viewed(await seedProfile(), slot, "default", Date.now() - DAY);
    const stats = slotStatsSchema.parse(await (await api(`/api/slots/${slot}/stats`)).json());
    expect(stats.variants).toEqual([
      { variant: "default", exposures: 1, visitors: 1, conversions: null, conversionRate: null },
    ]);
  });

  it("honours an explicit time range", async () => {
    const slot = unique("range");
    await putSlot(slot, { default: "d" });
    const p = await seedProfile();
    await viewed(p, slot, "default", Date.parse("2026-03-10T00:00:00Z"));
    await viewed(p, slot, "default", Date.parse("2026-03-20T00:00:00Z"));
    const res = await api(`/api/slots/${slot}/stats?from=2026-03-01T00:00:00Z&to=2026-03-15T00:00:00Z`);
    const stats = slotStatsSchema.parse(await res.json());
    expect(stats.from).toBe("2026-03-01T00:00:00.000Z");
    expect(stats.variants[0].exposures).toBe(1);
  });

  it("refuses a range longer than 90 days", async () => {
    const slot = unique("long");
    await putSlot(slot, { default: "d" });
    const res = await api(`/api/slots/${slot}/stats?from=2025-01-01T00:00:00Z&to=2026-01-01T00:00:00Z`);
    expect(res.status).toBe(400);
  });

  it("answers 404 for an unknown slot", async () => {
    expect((await api(`/api/slots/${unique("none")}/stats`)).status).toBe(404);
  });
});

describe("GET /api/slots/:key/preview", () => {
  it("shows what a contact gets and which rule matched", async () => {
    const slot = unique("preview");
    await putSlot(slot, { default: "d", rules: [{ id: "for-vip", segment: vip, content: "vip!" }] });
    const profileId = await seedProfile({ segments: [vip] });
    const res = await api(`/api/slots/${slot}/preview?profileId=${profileId}`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      slot,
      profileId,
      variant: "for-vip",
      content: "vip!",
      rule: { id: "for-vip", segment: vip },
      heldOut: false,
      inSchedule: true,
      segments: [vip],
    });
  });

  it("previews a merged-away id as the profile it was merged into", async () => {
    const slot = unique("preview");
    await putSlot(slot, { default: "d", rules: [{ id: "for-vip", segment: vip, content: "vip!" }] });
    const survivor = await seedProfile({ segments: [vip] });
    const old = await seedProfile({ mergedInto: survivor });
    const body = (await (await api(`/api/slots/${slot}/preview?profileId=${old}`)).json()) as Record<string, unknown>;
    expect(body).toMatchObject({ profileId: survivor, variant: "for-vip" });
  });

  it("answers 404 for an unknown profile", async () => {
    const slot = unique("preview");
    await putSlot(slot, { default: "d" });
    expect((await api(`/api/slots/${slot}/preview?profileId=prf_missing`)).status).toBe(404);
  });

  it("answers 400 without a profileId", async () => {
    const slot = unique("preview");
    await putSlot(slot, { default: "d" });
    expect((await api(`/api/slots/${slot}/preview`)).status).toBe(400);
  });
});
