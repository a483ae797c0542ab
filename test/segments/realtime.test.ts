import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { planSegmentWrites } from "../../worker/segments/pipeline";
import { runScheduled } from "../../worker/segments/scheduled";
import { saveSegment } from "../../worker/segments/service";
import { loadSegments } from "../../worker/segments/store";
import {
  commit,
  DAY,
  delta,
  HOUR,
  historyOf,
  MIN,
  makeEvent,
  memberKeys,
  seedProfiles,
  T0,
  uniqueKey,
} from "./factories";

const create = (key: string, rule: unknown, now = T0) =>
  saveSegment(env.DB, { key, name: key, rule: rule as never }, now, "create");

describe("real-time segment evaluation", () => {
  it("enters a profile on the event that makes it qualify", async () => {
    const key = uniqueKey("shoes");
    await create(key, { event: "Product Added", where: [{ property: "category", op: "eq", value: "shoes" }] });
    const [id] = await seedProfiles([{}]);
    await commit([delta(id, { events: [makeEvent({ properties: { category: "shoes" } })] })], T0 + MIN);
    expect(await memberKeys(id)).toContain(key);
    expect(await historyOf(key, id)).toEqual(["entered"]);
  });

  it("does not enter on an event whose properties do not match the filter", async () => {
    const key = uniqueKey("shoes");
    await create(key, { event: "Product Added", where: [{ property: "category", op: "eq", value: "shoes" }] });
    const [id] = await seedProfiles([{}]);
    await commit([delta(id, { events: [makeEvent({ properties: { category: "hats" } })] })], T0 + MIN);
    expect(await memberKeys(id)).not.toContain(key);
  });

  it("exits on a later event that breaks the rule", async () => {
    const key = uniqueKey("no-order");
    await create(key, { all: [{ event: "Product Added" }, { not: { event: "Order Completed" } }] });
    const [id] = await seedProfiles([{}]);
    await commit([delta(id, { events: [makeEvent()] })], T0 + MIN);
    expect(await memberKeys(id)).toContain(key);
    await commit(
      [delta(id, { events: [makeEvent({ event: "Order Completed", timestamp: T0 + 2 * MIN })] })],
      T0 + 2 * MIN,
    );
    expect(await memberKeys(id)).not.toContain(key);
    expect(await historyOf(key, id)).toEqual(["entered", "exited"]);
  });

  it("enters on a trait change and counts events across batches", async () => {
    const key = uniqueKey("pro-buyer");
    await create(key, {
      all: [
        { trait: "plan", op: "eq", value: "pro" },
        { event: "Order Completed", count: { op: "gte", value: 2 } },
      ],
    });
    const [id] = await seedProfiles([{}]);
    await commit([delta(id, { events: [makeEvent({ event: "Order Completed" })] })], T0);
    await commit([delta(id, { events: [makeEvent({ event: "Order Completed", timestamp: T0 + MIN })] })], T0 + MIN);
    expect(await memberKeys(id)).not.toContain(key);
    await commit([delta(id, { traits: { plan: "pro" }, changedTraits: ["plan"] })], T0 + 2 * MIN);
    expect(await memberKeys(id)).toContain(key);
  });

  it("re-evaluates only the segments an event or trait can affect", async () => {
    const byTrait = uniqueKey("vip");
    await create(byTrait, { trait: "vip", op: "eq", value: true });
    const [id] = await seedProfiles([{ traits: { vip: true } }]);
    // The stored traits say vip, but the segment was saved before; an unrelated event leaves it alone.
    await env.DB.prepare("DELETE FROM memberships WHERE profile_id = ?").bind(id).run();
    await commit([delta(id, { traits: { vip: true }, events: [makeEvent({ event: "Unrelated" })] })], T0 + MIN);
    expect(await memberKeys(id)).not.toContain(byTrait);
    await commit([delta(id, { traits: { vip: true }, changedTraits: ["vip"] })], T0 + 2 * MIN);
    expect(await memberKeys(id)).toContain(byTrait);
  });

  it("evaluates a brand-new profile against every segment", async () => {
    const key = uniqueKey("anonymous");
    await create(key, { trait: "email", op: "not_exists" });
    const id = `prf_new_${Math.random().toString(36).slice(2)}`;
    // No profile row yet: the pipeline creates it in the same batch.
    await commit([delta(id, { events: [makeEvent({ event: "Unrelated" })] })], T0 + MIN);
    expect(await memberKeys(id)).toContain(key);
  });

  it("keeps a segment of segments in step, in dependency order", async () => {
    const base = uniqueKey("carted");
    const derived = uniqueKey("carted-pro");
    await create(base, { event: "Product Added" });
    await create(derived, { all: [{ segment: base }, { trait: "plan", op: "eq", value: "pro" }] });
    const [id] = await seedProfiles([{ traits: { plan: "pro" } }]);
    await commit([delta(id, { traits: { plan: "pro" }, events: [makeEvent()] })], T0 + MIN);
    expect(await memberKeys(id)).toEqual(expect.arrayContaining([base, derived]));
  });

  it("lapses a time window with no new event when the cron runs", async () => {
    const key = uniqueKey("recent");
    await create(key, { event: "Product Added", within: "30m" });
    const [id] = await seedProfiles([{}]);
    await commit([delta(id, { events: [makeEvent({ timestamp: T0 })] })], T0);
    expect(await memberKeys(id)).toContain(key);
    const check = await env.DB.prepare("SELECT check_at FROM segment_checks WHERE segment_key = ? AND profile_id = ?")
      .bind(key, id)
      .first<{ check_at: number }>();
    expect(check?.check_at).toBe(T0 + 30 * MIN + 1);
    await runScheduled(env, T0 + 29 * MIN);
    expect(await memberKeys(id)).toContain(key);
    await runScheduled(env, T0 + 31 * MIN);
    expect(await memberKeys(id)).not.toContain(key);
    expect(await historyOf(key, id)).toEqual(["entered", "exited"]);
  });

  it("counts events per UTC day for counts over a window", async () => {
    const key = uniqueKey("twice-a-week");
    await create(key, { event: "Product Added", count: { op: "gte", value: 2 }, within: "7d" });
    const [id] = await seedProfiles([{}]);
    const first = T0 - 6 * DAY;
    await commit([delta(id, { events: [makeEvent({ timestamp: first }), makeEvent({ timestamp: T0 })] })], T0);
    expect(await memberKeys(id)).toContain(key);
    // The first event's day leaves the window when the window start passes that day's end.
    const dayEnd = (Math.floor(first / DAY) + 1) * DAY;
    await runScheduled(env, dayEnd + 7 * DAY - 1);
    expect(await memberKeys(id)).toContain(key);
    await runScheduled(env, dayEnd + 7 * DAY);
    expect(await memberKeys(id)).not.toContain(key);
  });

  it("folds the counters of a merged-away profile into the survivor", async () => {
    const key = uniqueKey("two-adds");
    await create(key, { event: "Product Added", count: { op: "gte", value: 2 } });
    const [winner, loser] = await seedProfiles([{}, {}]);
    await commit([delta(loser, { events: [makeEvent()] })], T0);
    await env.DB.prepare("UPDATE profiles SET merged_into = ? WHERE id = ?").bind(winner, loser).run();
    await commit([delta(winner, { events: [makeEvent({ timestamp: T0 + MIN })], absorbed: [loser] })], T0 + MIN);
    expect(await memberKeys(winner)).toContain(key);
  });

  it("writes one outbox row per subscribed destination, and none for a repeated decision", async () => {
    const key = uniqueKey("hook");
    await create(key, { event: "Checkout Started" });
    const dest = `dst_${Math.random().toString(36).slice(2)}`;
    await env.DB.prepare(
      "INSERT INTO destinations (id, name, url, secret, segments, events, enabled, created_at, updated_at) VALUES (?, 'crm', 'https://hooks.example.com/x', 'whsec_AAAA', ?, '[\"Signed Up\"]', 1, ?, ?)",
    )
      .bind(dest, JSON.stringify([key]), T0, T0)
      .run();
    const [id] = await seedProfiles([{}]);
    await commit(
      [delta(id, { events: [makeEvent({ event: "Checkout Started" }), makeEvent({ event: "Signed Up" })] })],
      T0 + MIN,
    );
    await commit(
      [delta(id, { events: [makeEvent({ event: "Checkout Started", timestamp: T0 + 2 * MIN })] })],
      T0 + 2 * MIN,
    );
    const rows = await env.DB.prepare(
      "SELECT type, status, payload FROM deliveries WHERE destination_id = ? ORDER BY type",
    )
      .bind(dest)
      .all<{ type: string; status: string; payload: string }>();
    expect(rows.results.map((r) => r.type)).toEqual(["event", "segment.entered"]);
    expect(rows.results.every((r) => r.status === "pending")).toBe(true);
    const entered = JSON.parse(rows.results[1].payload);
    expect(entered).toMatchObject({ type: "segment.entered", data: { segment: { key }, profile: { id } } });
    await env.DB.prepare("UPDATE destinations SET enabled = 0 WHERE id = ?").bind(dest).run();
  });

  it("records and announces an entry once when two writers decided it from the same state", async () => {
    const key = uniqueKey("raced");
    await create(key, { trait: "plan", op: "eq", value: "team" });
    const dest = `dst_${Math.random().toString(36).slice(2)}`;
    await env.DB.prepare(
      "INSERT INTO destinations (id, name, url, secret, segments, events, enabled, created_at, updated_at) VALUES (?, 'crm', 'https://hooks.example.com/x', 'whsec_AAAA', ?, '[]', 1, ?, ?)",
    )
      .bind(dest, JSON.stringify([key]), T0, T0)
      .run();
    const [id] = await seedProfiles([{ traits: { plan: "team" } }]);
    const segs = await loadSegments(env.DB);
    const subject = {
      profileId: id,
      traits: { plan: "team" },
      computed: {},
      counters: {},
      changedTraits: ["plan"],
      events: [],
      isNew: false,
      rebuilt: false,
    };
    // Both plan before either writes: each sees no membership and decides "entered".
    const first = await planSegmentWrites(env.DB, segs, [subject], T0 + MIN);
    const second = await planSegmentWrites(env.DB, segs, [subject], T0 + MIN);
    await env.DB.batch(first);
    await env.DB.batch(second);
    expect(await memberKeys(id)).toContain(key);
    expect(await historyOf(key, id)).toEqual(["entered"]);
    const sent = await env.DB.prepare("SELECT count(*) AS n FROM deliveries WHERE destination_id = ?")
      .bind(dest)
      .first<{ n: number }>();
    expect(sent?.n).toBe(1);
    await env.DB.prepare("UPDATE destinations SET enabled = 0 WHERE id = ?").bind(dest).run();
  });

  it("schedules the re-check of a within_last trait for when it lapses", async () => {
    const key = uniqueKey("new-signup");
    await create(key, { trait: "signed_up_at", op: "within_last", value: "2d" }, T0);
    const signedUp = new Date(T0 - HOUR).toISOString();
    const [id] = await seedProfiles([{ traits: { signed_up_at: signedUp } }]);
    await commit([delta(id, { traits: { signed_up_at: signedUp }, changedTraits: ["signed_up_at"] })], T0);
    expect(await memberKeys(id)).toContain(key);
    await runScheduled(env, T0 - HOUR + 2 * DAY + 1);
    expect(await memberKeys(id)).not.toContain(key);
  });
});
