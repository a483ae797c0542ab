import { createExecutionContext, createMessageBatch, env, getQueueResult } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../worker";
import { processBatch } from "../../worker/pipeline/process";
import type { QueuedBatch } from "../../worker/wire/queue";
import { api } from "../helpers/api";
import { body, identify, makeEvent, makeSiteRow, page, profileOf, profileRow, run, T0, uid } from "./factory";

const DAY = 86_400_000;

async function metric(name: string, day: number): Promise<number> {
  const row = await env.DB.prepare("SELECT value FROM metrics WHERE name = ? AND day = ?")
    .bind(name, day)
    .first<{ value: number }>();
  return row?.value ?? 0;
}

/** All stored events, as /api/stats counts them: the sum of the `events` metric's days. */
async function eventsTotal(): Promise<number> {
  const row = await env.DB.prepare("SELECT sum(value) AS n FROM metrics WHERE name = 'events'").first<{
    n: number | null;
  }>();
  return row?.n ?? 0;
}

async function eventCount(siteId: string): Promise<number> {
  const row = await env.DB.prepare("SELECT count(*) AS n FROM events WHERE site_id = ?")
    .bind(siteId)
    .first<{ n: number }>();
  return row?.n ?? 0;
}

/** A D1 whose write batches fail inside the transaction (a constraint at the very end). */
function failingWrites(db: D1Database): D1Database {
  return {
    prepare: (sql: string) => db.prepare(sql),
    batch: (statements: D1PreparedStatement[]) =>
      statements.length >= 4
        ? db.batch([...statements, db.prepare("INSERT INTO write_guards (ok) VALUES (0)")])
        : db.batch(statements),
    exec: (sql: string) => db.exec(sql),
    dump: () => db.dump(),
    withSession: (constraint?: string) => db.withSession(constraint),
  } as D1Database;
}

let messageSeq = 0;
const queueBatch = (bodies: unknown[]) =>
  createMessageBatch(
    "tessera-events",
    bodies.map((b) => ({ id: `m${messageSeq++}`, timestamp: new Date(T0), attempts: 1, body: b })),
  );

describe("pipeline consumer", () => {
  it("applies a redelivered batch once: events, computed traits and metrics are not doubled", async () => {
    const site = await makeSiteRow();
    const anon = uid("a");
    const day = Math.floor(T0 / DAY);
    const events = [
      page({ anonymousId: anon, timestamp: T0 }),
      makeEvent({ anonymousId: anon, event: "Order Completed", properties: { revenue: 20 }, timestamp: T0 + 1 }),
    ];
    const before = await metric("events", day);
    const first = await run(site, events);
    const second = await run(site, events);
    expect(first.stored).toBe(2);
    expect(second).toMatchObject({ stored: 0, duplicates: 2 });
    expect(await eventCount(site)).toBe(2);
    const profile = await profileRow((await profileOf("anonymous_id", anon)) as string);
    expect(profile.computed).toMatchObject({ page_views: 1, orders: 1, total_revenue: 20 });
    expect(await metric("events", day)).toBe(before + 2);
  });

  it("throws on a D1 failure without writing anything, and the retried batch lands exactly once", async () => {
    const site = await makeSiteRow();
    const user = uid("u");
    const message: QueuedBatch = body(site, [identify({ userId: user, traits: { email: `${user}@x.io` } })]);
    const eventsBefore = await eventsTotal();

    const broken = queueBatch([message]);
    await expect(
      worker.queue(broken, { ...env, DB: failingWrites(env.DB) }, createExecutionContext()),
    ).rejects.toThrow();
    expect(await eventCount(site)).toBe(0);
    expect(await profileOf("user_id", user)).toBeNull();
    expect(await eventsTotal()).toBe(eventsBefore);

    for (let delivery = 0; delivery < 2; delivery++) {
      const retried = queueBatch([message]);
      const ctx = createExecutionContext();
      await worker.queue(retried, env, ctx);
      expect((await getQueueResult(retried, ctx)).ackAll).toBe(true);
    }
    expect(await eventCount(site)).toBe(1);
    expect(await profileOf("user_id", user)).not.toBeNull();
    expect(await eventsTotal()).toBe(eventsBefore + 1);
  });

  it("records a message that is not a QueuedBatch as a dead letter and still processes the others", async () => {
    const site = await makeSiteRow();
    const anon = uid("a");
    const junk = { v: 9, note: uid("junk") };
    const batch = queueBatch([junk, body(site, [page({ anonymousId: anon })])]);
    const ctx = createExecutionContext();
    await worker.queue(batch, env, ctx);
    expect((await getQueueResult(batch, ctx)).ackAll).toBe(true);
    expect(await profileOf("anonymous_id", anon)).not.toBeNull();
    const res = await api("/api/dead-letters?limit=100");
    expect(res.status).toBe(200);
    const list = (await res.json()) as { items: { queue: string; body: unknown }[] };
    expect(list.items).toContainEqual(expect.objectContaining({ queue: "tessera-events", body: junk }));
  });

  it("records messages from the dead-letter queue so they are visible in the API", async () => {
    const lost = { v: 1, siteId: uid("site_"), events: [], marker: uid("dlq") };
    const batch = createMessageBatch("tessera-events-dlq", [
      { id: uid("msg"), timestamp: new Date(T0), attempts: 6, body: lost },
    ]);
    const ctx = createExecutionContext();
    await worker.queue(batch, env, ctx);
    expect((await getQueueResult(batch, ctx)).ackAll).toBe(true);
    const list = (await (await api("/api/dead-letters?limit=100")).json()) as {
      items: { queue: string; body: unknown }[];
    };
    expect(list.items).toContainEqual(expect.objectContaining({ queue: "tessera-events-dlq", body: lost }));
  });

  it("merges parallel identifies of one person into one profile, even when two batches race", async () => {
    const site = await makeSiteRow();
    const [user, tab1, tab2] = [uid("u"), uid("a"), uid("a")];
    const results = await Promise.all([
      processBatch(env, [body(site, [identify({ anonymousId: tab1, userId: user, timestamp: T0 })])], T0 + 10),
      processBatch(env, [body(site, [identify({ anonymousId: tab2, userId: user, timestamp: T0 + 1 })])], T0 + 10),
    ]);
    const profile = await profileOf("user_id", user);
    expect(await profileOf("anonymous_id", tab1)).toBe(profile);
    expect(await profileOf("anonymous_id", tab2)).toBe(profile);
    const { results: live } = await env.DB.prepare(
      "SELECT DISTINCT p.id FROM events e JOIN profiles p ON p.id = e.profile_id WHERE e.site_id = ? AND p.merged_into IS NULL",
    )
      .bind(site)
      .all();
    expect(live).toHaveLength(1);
    // Both read before either wrote: the loser of the race was rolled back and decided again.
    expect(results.map((r) => r.attempts).sort()).toEqual([1, 2]);
    // No lost update: both events' effects are on the profile.
    expect((await profileRow(profile as string)).computed).toMatchObject({ first_seen: T0, last_seen: T0 + 1 });
  });

  it("writes at most 3 rows per page view on an existing profile", async () => {
    const site = await makeSiteRow();
    const anon = uid("a");
    await run(site, [identify({ anonymousId: anon, traits: { email: `${anon}@x.io` } })]);
    const views = Array.from({ length: 20 }, (_, i) =>
      page({ anonymousId: anon, timestamp: T0 + 1000 + i, properties: { path: `/p/${i}` } }),
    );
    const result = await run(site, views, T0 + 120_000);
    expect(result.stored).toBe(20);
    expect(result.rowsWritten / 20).toBeLessThanOrEqual(3);
  });

  it("reflects an event sent through the real queue in its profile", async () => {
    const site = await makeSiteRow();
    const anon = uid("a");
    await env.EVENTS.send(body(site, [page({ anonymousId: anon, timestamp: Date.now() })]));
    let profile: string | null = null;
    for (let i = 0; i < 100 && !profile; i++) {
      await new Promise((r) => setTimeout(r, 50));
      profile = await profileOf("anonymous_id", anon);
    }
    expect(profile).not.toBeNull();
    expect((await profileRow(profile as string)).computed.page_views).toBe(1);
  });
});
