/**
 * Issue 10, "Faults": one campaign that injects every fault kind through wrapped bindings (the
 * EVENTS and DELIVERIES queues, the D1 binding, the webhook receivers' fetch) and keeps exact
 * accounts. After each scenario and in total: events sent = events stored + events explicitly
 * rejected (rejected_events, dead_letters), and every effect — computed traits, traits, metrics,
 * counters, segment entries, webhook outbox rows, 2xx webhook answers — happened exactly once.
 *
 * The queues are simulated with Cloudflare Queues' contract (faults-harness.ts) so the test decides
 * when batches are delivered, what a consumer's crash leaves unacknowledged, and when a message
 * has exhausted its retries. The consumer, ingest route and delivery code are the product's own.
 */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import worker, { app } from "../../worker";
import { handleDeadDeliveries, handleDeliveries } from "../../worker/activation/consumer";
import { relayDeliveries } from "../../worker/activation/outbox";
import { makeDestination, publicDns } from "../activation/helpers";
import { api, BASE } from "../helpers/api";
import { basic, makeIngestSite } from "../ingest/helpers";
import { identify as normalizedIdentify, uid } from "../pipeline/factory";
import { type Behaviour, behaviours, FaultyD1, SimQueue, webhookReceivers } from "./faults-harness";

// The retry limits of wrangler.toml's consumers.
const EVENTS_MAX_RETRIES = 5;
const DELIVERIES_MAX_RETRIES = 8;
const allowAll = { limit: async () => ({ success: true }) } as unknown as RateLimit;

const eventsDlq = new SimQueue("tessera-events-dlq", { maxRetries: 3, maxBatch: 100 });
const events = new SimQueue("tessera-events", {
  maxRetries: EVENTS_MAX_RETRIES,
  maxBatch: 100,
  deadLetters: eventsDlq,
});
const deliveriesDlq = new SimQueue("tessera-deliveries-dlq", { maxRetries: 3, maxBatch: 100 });
const deliveries = new SimQueue("tessera-deliveries", {
  maxRetries: DELIVERIES_MAX_RETRIES,
  maxBatch: 10,
  deadLetters: deliveriesDlq,
});
const d1 = new FaultyD1(env.DB);
const consumerEnv = { ...env, DB: d1.binding, EVENTS: events.binding(), DELIVERIES: deliveries.binding() };
const consume = (batch: MessageBatch<unknown>, ctx: ExecutionContext) => worker.queue(batch, consumerEnv, ctx);
const recordDlq = (batch: MessageBatch<unknown>, ctx: ExecutionContext) => worker.queue(batch, env, ctx);

const HOSTS: Record<string, Behaviour> = {
  "ok.hooks.example": behaviours.ok(),
  "slow.hooks.example": behaviours.slowOnce(),
  "flaky.hooks.example": behaviours.failing(2, 503),
  "busy.hooks.example": behaviours.rateLimitedOnce("7"),
  "down.hooks.example": behaviours.down(),
};
const receivers = webhookReceivers(HOSTS);

let site: Awaited<ReturnType<typeof makeIngestSite>>;
const buyers = `buyers-${uid()}`.toLowerCase();
const destinations = new Map<string, string>();
let requests = 0;
let poisonInjected = 0;
/** Deliveries whose acks the test dropped (a consumer dying between its work and its acks). */
let droppedAcks = 0;
let metricsBefore = { events: 0, orders: 0 };

interface Person {
  anon: string;
  user: string;
  plan: string;
}
type Msg = Record<string, unknown> & { messageId: string };

/** What the test sent, by messageId: the oracle every count is checked against. */
const ledger = new Map<string, { valid: boolean; person: Person | null; type: string; revenue: number }>();
const people = new Set<Person>();
const newPerson = (): Person => {
  const p = { anon: uid("anon-"), user: uid("user-"), plan: people.size % 2 ? "pro" : "free" };
  people.add(p);
  return p;
};

const now = () => new Date().toISOString();
const page = (p: Person, extra: Record<string, unknown> = {}): Msg => ({
  type: "page",
  messageId: uid("m-"),
  anonymousId: p.anon,
  name: "Home",
  properties: { path: "/", ...extra },
  timestamp: now(),
});
const identify = (p: Person): Msg => ({
  type: "identify",
  messageId: uid("m-"),
  anonymousId: p.anon,
  userId: p.user,
  traits: { plan: p.plan, email: `${p.user}@shop.example` },
  timestamp: now(),
});
const order = (p: Person, revenue: number): Msg => ({
  type: "track",
  event: "Order Completed",
  messageId: uid("m-"),
  anonymousId: p.anon,
  properties: { revenue },
  timestamp: now(),
});
/** A refund: the event the slow, failing and rate-limiting receivers subscribe to. */
const refund = (p: Person): Msg => ({
  type: "track",
  event: "Refund Issued",
  messageId: uid("m-"),
  anonymousId: p.anon,
  properties: { amount: 5 },
  timestamp: now(),
});
/** A message the ingest API refuses (no userId or anonymousId): stored in rejected_events. */
const invalid = (): Msg => ({ type: "track", event: "Orphan", messageId: uid("m-"), timestamp: now() });

function remember(messages: Msg[]) {
  for (const m of messages) {
    if (ledger.has(m.messageId)) continue;
    const anon = m.anonymousId;
    const owner = [...people].find((p) => p.anon === anon) ?? null;
    ledger.set(m.messageId, {
      valid: owner !== null,
      person: owner,
      type: m.type === "track" ? String(m.event) : String(m.type),
      revenue: Number((m.properties as { revenue?: number } | undefined)?.revenue ?? 0),
    });
  }
}

/** POST /v1/batch as a server would, with the simulated EVENTS queue as the binding. */
async function send(messages: Msg[]): Promise<Response> {
  remember(messages);
  requests++;
  const ctx = createExecutionContext();
  const res = await app.fetch(
    new Request(`${BASE}/v1/batch`, {
      method: "POST",
      headers: { "Content-Type": "text/plain", ...basic(site.writeKey) },
      body: JSON.stringify({ batch: messages }),
    }),
    { ...env, EVENTS: events.binding(), INGEST_RATE_LIMIT: allowAll },
    ctx,
  );
  await waitOnExecutionContext(ctx);
  return res;
}

async function sendOk(messages: Msg[]) {
  const res = await send(messages);
  expect(res.status, await res.clone().text()).toBe(200);
}

async function apiCall(path: string, init: Parameters<typeof api>[1] = {}) {
  requests++;
  return api(path, init);
}

/** Delivers the events queue until empty (each delivery in a fresh isolate), then its DLQ. */
async function drainEvents() {
  const reports = await events.drain(consume, () => d1.revive());
  await eventsDlq.drain(recordDlq);
  return reports;
}

interface Totals {
  stored: number;
  rejected: number;
  deadLettered: number;
}

/** What D1 holds for the campaign's site: stored events, rejected messages, dead-lettered events. */
async function totals(): Promise<Totals> {
  const [stored, rejected] = await env.DB.batch<{ n: number }>([
    env.DB.prepare("SELECT count(*) AS n FROM events WHERE site_id = ?").bind(site.id),
    env.DB.prepare("SELECT count(*) AS n FROM rejected_events WHERE site_id = ?").bind(site.id),
  ]);
  // Parsed here, not with SQLite's JSON functions: a poison body may nest deeper than they read.
  const { results: letters } = await env.DB.prepare("SELECT body FROM dead_letters WHERE instr(body, ?) > 0")
    .bind(site.id)
    .all<{ body: string }>();
  const deadLettered = letters
    .map((r) => JSON.parse(r.body) as { siteId?: unknown; events?: unknown })
    .filter((b) => b.siteId === site.id && Array.isArray(b.events))
    .reduce((n, b) => n + (b.events as unknown[]).length, 0);
  return { stored: stored.results[0].n, rejected: rejected.results[0].n, deadLettered };
}

const sentCounts = () => {
  const all = [...ledger.values()];
  return { valid: all.filter((e) => e.valid).length, invalid: all.filter((e) => !e.valid).length };
};

const figures = { sent: 0, stored: 0, rejected: 0, lost: 0, appliedTwice: 0 };

/**
 * Runs a scenario and checks its own accounts: what it sent is stored or explicitly rejected,
 * exactly, and nothing is left on the queues.
 */
async function scenario(run: () => Promise<{ poison?: number } | undefined>) {
  const before = await totals();
  const sentBefore = sentCounts();
  const outcome = (await run()) ?? {};
  const after = await totals();
  const sent = sentCounts();
  const valid = sent.valid - sentBefore.valid;
  const refused = sent.invalid - sentBefore.invalid + (outcome.poison ?? 0);
  const stored = after.stored - before.stored;
  const rejected = after.rejected - before.rejected + (after.deadLettered - before.deadLettered);
  expect(events.pending).toHaveLength(0);
  expect(eventsDlq.pending).toHaveLength(0);
  expect(d1.unfired).toBe(0);
  expect({ stored, rejected }).toEqual({ stored: valid, rejected: refused });
  expect(valid + refused).toBe(stored + rejected);
}

async function profileOf(p: Person) {
  const row = await env.DB.prepare(
    `SELECT p.id, p.traits, p.computed FROM identities i
     JOIN profiles p ON p.id = coalesce((SELECT merged_into FROM profiles WHERE id = i.profile_id), i.profile_id)
     WHERE i.type = 'anonymous_id' AND i.value = ?`,
  )
    .bind(p.anon)
    .first<{ id: string; traits: string; computed: string }>();
  if (!row) return null;
  return {
    id: row.id,
    traits: JSON.parse(row.traits) as Record<string, unknown>,
    computed: JSON.parse(row.computed) as { page_views?: number; orders?: number; total_revenue?: number },
  };
}

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
const today = () => Math.floor(Date.now() / 86_400_000);

beforeAll(async () => {
  site = await makeIngestSite();
  requests++;
  const seg = await apiCall("/api/segments", {
    body: { key: buyers, name: "Buyers", rule: { event: "Order Completed", count: { op: "gte", value: 1 } } },
  });
  expect(seg.status).toBe(201);
  for (const host of Object.keys(HOSTS)) {
    requests++;
    // The healthy receiver gets every order and segment entry; the troubled ones only refunds,
    // which the scenarios that risk a double write (lost answers, crashes) send.
    const ok = host.startsWith("ok.");
    const dest = await makeDestination({
      name: host,
      url: `https://${host}/hook`,
      events: [ok ? "Order Completed" : "Refund Issued"],
      segments: ok ? [buyers] : [],
    });
    destinations.set(host, dest.id);
  }
  metricsBefore = { events: await eventsTotal(), orders: await metric("event:Order Completed", today()) };
});

afterAll(() => {
  const { errors, timeouts, crashes } = d1.injected;
  const crashesAll = crashes + droppedAcks;
  const webhookFailures = receivers.failures();
  const faults = errors + timeouts + crashesAll + poisonInjected + events.sendFailures + webhookFailures;
  console.log(
    `faults campaign: ${requests} requests, ${faults} faults injected (d1 errors ${errors}, d1 timeouts ${timeouts}, crashes ${crashesAll}, poison ${poisonInjected}, queue.send failures ${events.sendFailures}, webhook failures ${webhookFailures}), ${figures.sent} events sent = ${figures.stored} stored + ${figures.rejected} rejected, ${figures.lost} lost, ${figures.appliedTwice} applied twice`,
  );
});

// Each scenario takes well under a second alone; the margin is for a loaded CI machine.
describe("faults campaign", { timeout: 20_000 }, () => {
  it("answers 503 with Retry-After when Queue.send fails, stores nothing, and stores the client's retry once", async () => {
    await scenario(async () => {
      const p = newPerson();
      const batch = [page(p), identify(p), order(p, 30), refund(p), invalid()];
      events.failSend = () => true;
      const refused = await send(batch);
      expect(refused.status).toBe(503);
      expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("unavailable");
      expect(events.pending).toHaveLength(0);
      expect(await totals()).toEqual({ stored: 0, rejected: 0, deadLettered: 0 });

      events.failSend = () => false;
      const retried = await send(batch);
      expect(retried.status).toBe(200);
      expect(await retried.json()).toEqual({ success: true, rejected: [{ index: 4, reason: expect.any(String) }] });
      await drainEvents();
      return undefined;
    });
  });

  it("answers 503 when only part of a request reached the queue, and the retry stores every event once", async () => {
    await scenario(async () => {
      const p = newPerson();
      // ~300 KB: more than one sendBatch call (240 KB each), so one can succeed and the next fail.
      const batch = Array.from({ length: 20 }, (_, i) => page(p, { n: i, note: "x".repeat(15_000) }));
      const base = events.sendCalls;
      events.failSend = (call) => call === base + 2;
      const refused = await send(batch);
      expect(refused.status).toBe(503);
      expect(events.sendCalls - base).toBeGreaterThanOrEqual(2);
      const durable = events.pending.length;
      expect(durable).toBeGreaterThan(0);

      events.failSend = () => false;
      expect((await send(batch)).status).toBe(200);
      // The first attempt's messages are delivered again by the retry: the consumer drops them.
      expect(events.pending.length).toBeGreaterThan(durable);
      await drainEvents();
      return undefined;
    });
  });

  it("absorbs a failed write within the delivery, and redelivers after a persistent write error or a failed read", async () => {
    await scenario(async () => {
      const transient = newPerson();
      await sendOk([identify(transient), order(transient, 12), page(transient)]);
      d1.plan({ on: "write", fault: "error" });
      expect(await drainEvents()).toHaveLength(1);

      const persistent = newPerson();
      await sendOk([identify(persistent), order(persistent, 7)]);
      // The pipeline tries a write three times before giving the batch back to the queue.
      d1.plan({ on: "write", fault: "error", times: 3 });
      const twice = await drainEvents();
      expect(twice.map((r) => r.threw)).toEqual([true, false]);

      const unread = newPerson();
      await sendOk([page(unread), order(unread, 5)]);
      d1.plan({ on: "read", fault: "error" });
      expect((await drainEvents()).map((r) => r.threw)).toEqual([true, false]);
      return undefined;
    });
  });

  it("retries every message of a redelivered batch while D1 is down, trying only three of them alone", async () => {
    await scenario(async () => {
      for (let i = 0; i < 5; i++) {
        const p = newPerson();
        await sendOk([identify(p), order(p, 10 + i)]);
      }
      d1.outage = true;
      try {
        const first = d1.injected.errors;
        expect(await events.deliver(consume)).toMatchObject({ threw: true, retried: 5 });
        const perAttempt = d1.injected.errors - first;
        // Redelivered, the batch fails whole again, then the consumer tries single messages (one
        // could be poison) but stops after three storage failures in a row: D1 is down, so the
        // last two are retried without asking it. Trying all five would cost six attempts.
        expect(await events.deliver(consume)).toMatchObject({ threw: false, acked: 0, retried: 5 });
        expect(d1.injected.errors - first - perAttempt).toBeLessThan(6 * perAttempt);
      } finally {
        d1.outage = false;
      }
      expect((await drainEvents()).map((r) => r.acked)).toEqual([5]);
      return undefined;
    });
  });

  it("survives D1 timeouts on a read, on a write, and after a write committed without double effects", async () => {
    await scenario(async () => {
      const slowRead = newPerson();
      await sendOk([identify(slowRead), page(slowRead)]);
      d1.plan({ on: "read", fault: "timeout" });
      expect((await drainEvents()).map((r) => r.threw)).toEqual([true, false]);

      const slowWrite = newPerson();
      await sendOk([order(slowWrite, 40), page(slowWrite)]);
      d1.plan({ on: "write", fault: "timeout" });
      expect(await drainEvents()).toHaveLength(1);

      // The write landed but its answer was lost: the retry reads the messageIds back and skips them.
      const lostAnswer = newPerson();
      await sendOk([identify(lostAnswer), order(lostAnswer, 25), order(lostAnswer, 15), refund(lostAnswer)]);
      d1.plan({ on: "write", fault: "timeout-after-commit" });
      expect(await drainEvents()).toHaveLength(1);
      return undefined;
    });
  });

  it("redelivers a batch whose consumer crashed after its reads, after its write, or before its acks, applying it once", async () => {
    await scenario(async () => {
      const afterRead = newPerson();
      await sendOk([identify(afterRead), order(afterRead, 9)]);
      d1.plan({ on: "write", fault: "crash" });
      expect((await drainEvents()).map((r) => r.threw)).toEqual([true, false]);

      const afterWrite = newPerson();
      await sendOk([identify(afterWrite), order(afterWrite, 11), page(afterWrite), refund(afterWrite)]);
      d1.plan({ on: "write", fault: "crash-after-commit" });
      expect((await drainEvents()).map((r) => r.threw)).toEqual([true, false]);

      const beforeAck = newPerson();
      await sendOk([order(beforeAck, 3), page(beforeAck), refund(beforeAck)]);
      const lost = await events.deliver(consume, { dropAcks: true });
      droppedAcks++;
      expect(lost.retried).toBe(lost.messages);
      await drainEvents();
      return undefined;
    });
  });

  it("dead-letters poison messages and stores the other messages of their batch", async () => {
    await scenario(async () => {
      const first = newPerson();
      const second = newPerson();
      await sendOk([identify(first), order(first, 21)]);
      // Not a QueuedBatch at all: recorded as a dead letter at once.
      events.inject({ v: 9, siteId: site.id, events: [{ type: "track", event: "From an old producer" }] });
      // Fits the consumer's guard, but D1 refuses to store it (JSON nested past SQLite's limit):
      // every delivery fails until the queue gives up and hands it to the dead-letter queue.
      let nested: Record<string, unknown> = {};
      const traits = { deep: nested };
      for (let i = 0; i < 1_100; i++) {
        const next: Record<string, unknown> = {};
        nested.x = next;
        nested = next;
      }
      events.inject({ v: 1, siteId: site.id, events: [normalizedIdentify({ anonymousId: uid("poison-"), traits })] });
      poisonInjected += 2;
      await sendOk([page(second), order(second, 8)]);
      const reports = await drainEvents();
      expect(reports.reduce((n, r) => n + r.deadLettered, 0)).toBe(1);
      // Only the poison was retried to exhaustion, not its neighbours.
      expect(reports.length).toBeLessThanOrEqual(EVENTS_MAX_RETRIES + 1);
      expect(await profileOf(first)).not.toBeNull();
      expect(await profileOf(second)).not.toBeNull();
      return { poison: 2 };
    });
  });

  it("delivers every webhook once despite slow, failing and rate-limiting receivers, and dead-letters the endless failures", async () => {
    const delays = new Map<string, number[]>();
    const consumeDeliveries = async (batch: MessageBatch<unknown>) => {
      // Record the backoff each retry asks the queue for.
      for (const message of batch.messages) {
        const retry = message.retry.bind(message);
        const id = (message.body as { deliveryId: string }).deliveryId;
        Object.defineProperty(message, "retry", {
          value: (options?: QueueRetryOptions) => {
            delays.set(id, [...(delays.get(id) ?? []), options?.delaySeconds ?? 0]);
            retry(options);
          },
        });
      }
      await handleDeliveries(batch, env, { fetch: receivers.fetch, resolve: publicDns });
    };
    // Rows a crashed batch could not relay are due now; the relay hands them to the queue.
    await relayDeliveries({ ...env, DELIVERIES: deliveries.binding() }, Date.now());
    await deliveries.drain(consumeDeliveries);
    await deliveriesDlq.drain(async (batch) => handleDeadDeliveries(batch, env));

    const ordersStored = [...ledger.values()].filter((e) => e.valid && e.type === "Order Completed").length;
    const refundsStored = [...ledger.values()].filter((e) => e.valid && e.type === "Refund Issued").length;
    expect(refundsStored).toBe(4);
    const buyersCount = [...people].filter((p) =>
      [...ledger.values()].some((e) => e.person === p && e.type === "Order Completed"),
    ).length;
    for (const [host, id] of destinations) {
      const rows = await env.DB.prepare(
        "SELECT id, type, status, attempts, last_error FROM deliveries WHERE destination_id = ?",
      )
        .bind(id)
        .all<{ id: string; type: string; status: string; attempts: number; last_error: string | null }>();
      const expected = host.startsWith("ok.") ? ordersStored + buyersCount : refundsStored;
      // One outbox row per stored event (and per segment entry): no row from a redelivered batch.
      expect(rows.results, host).toHaveLength(expected);
      const log = await apiCall(`/api/destinations/${id}/deliveries?limit=200`);
      const items = ((await log.json()) as { items: { id: string; status: string; attempts: number }[] }).items;
      expect(items.map((i) => i.id).sort(), host).toEqual(rows.results.map((r) => r.id).sort());
      for (const row of rows.results) {
        const calls = receivers.calls.filter((c) => c.webhookId === row.id);
        expect(row.attempts, `${host} ${row.id}`).toBe(calls.length);
        expect(calls.every((c) => c.hadSignal)).toBe(true);
        if (host.startsWith("down.")) {
          expect(row).toMatchObject({ status: "failed", attempts: DELIVERIES_MAX_RETRIES + 1 });
          expect(row.last_error).toBe("Gave up after retries: HTTP 500");
          expect(receivers.successesOf(row.id)).toBe(0);
        } else {
          expect(row.status, `${host} ${row.id}`).toBe("delivered");
          expect(receivers.successesOf(row.id)).toBe(1);
        }
        const backoff = delays.get(row.id) ?? [];
        if (host.startsWith("slow.")) expect(backoff).toEqual([30]);
        if (host.startsWith("flaky.")) expect(backoff).toEqual([30, 60]);
        if (host.startsWith("busy.")) expect(backoff).toEqual([7]);
        if (host.startsWith("down.")) expect(backoff).toEqual([30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        if (host.startsWith("ok.")) expect(backoff).toEqual([]);
      }
    }
    expect(deliveries.pending).toHaveLength(0);
  });

  it("in total: events sent = stored + rejected, and every effect applied exactly once", async () => {
    const all = [...ledger.values()];
    const valid = [...ledger].filter(([, e]) => e.valid).map(([id]) => id);
    const end = await totals();
    const sent = all.length + poisonInjected;
    const rejected = end.rejected + end.deadLettered;
    figures.sent = sent;
    figures.stored = end.stored;
    figures.rejected = rejected;
    figures.lost = sent - end.stored - rejected;

    // Exactly the valid messageIds were stored.
    const { results: stored } = await env.DB.prepare("SELECT message_id FROM events WHERE site_id = ?")
      .bind(site.id)
      .all<{ message_id: string }>();
    expect(stored.map((r) => r.message_id).sort()).toEqual(valid.sort());
    expect(figures.lost).toBe(0);
    expect(rejected).toBe(all.filter((e) => !e.valid).length + poisonInjected);

    // Each person's effects, against the oracle of what was sent.
    let twice = 0;
    const profileIds: string[] = [];
    for (const p of people) {
      const mine = all.filter((e) => e.person === p);
      const orders = mine.filter((e) => e.type === "Order Completed");
      const profile = await profileOf(p);
      expect(profile).not.toBeNull();
      if (!profile) continue;
      profileIds.push(profile.id);
      const expected = {
        page_views: mine.filter((e) => e.type === "page").length,
        orders: orders.length,
        total_revenue: orders.reduce((sum, e) => sum + e.revenue, 0),
      };
      const got = {
        page_views: profile.computed.page_views ?? 0,
        orders: profile.computed.orders ?? 0,
        total_revenue: profile.computed.total_revenue ?? 0,
      };
      twice += Math.max(0, got.page_views - expected.page_views) + Math.max(0, got.orders - expected.orders);
      expect(got, p.anon).toEqual(expected);
      if (mine.some((e) => e.type === "identify")) expect(profile.traits.plan).toBe(p.plan);
    }

    // Running totals and counters moved by exactly what was stored.
    const ordersStored = all.filter((e) => e.valid && e.type === "Order Completed").length;
    const eventsMetric = (await eventsTotal()) - metricsBefore.events;
    const ordersMetric = (await metric("event:Order Completed", today())) - metricsBefore.orders;
    const [counted, entered] = await env.DB.batch<{ n: number | null }>([
      env.DB.prepare(
        `SELECT sum(c.value ->> 1) AS n FROM profiles p CROSS JOIN json_each(p.counters) m CROSS JOIN json_each(m.value) c
         WHERE p.id IN (SELECT value FROM json_each(?))`,
      ).bind(JSON.stringify(profileIds)),
      env.DB.prepare("SELECT count(*) AS n FROM membership_changes WHERE segment_key = ? AND change = 'entered'").bind(
        buyers,
      ),
    ]);
    const buyersCount = [...people].filter((p) =>
      all.some((e) => e.person === p && e.type === "Order Completed"),
    ).length;
    twice += Math.max(0, eventsMetric - end.stored) + Math.max(0, ordersMetric - ordersStored);
    twice +=
      Math.max(0, (counted.results[0].n ?? 0) - ordersStored) + Math.max(0, (entered.results[0].n ?? 0) - buyersCount);
    expect(eventsMetric).toBe(end.stored);
    expect(ordersMetric).toBe(ordersStored);
    expect(counted.results[0].n).toBe(ordersStored);
    expect(entered.results[0].n).toBe(buyersCount);
    const doubleWebhooks = receivers.calls.filter(
      (c) => typeof c.status === "number" && c.status < 300 && receivers.successesOf(c.webhookId) > 1,
    ).length;
    twice += doubleWebhooks;
    figures.appliedTwice = twice;
    expect(twice).toBe(0);
  });
});
