/**
 * Issue 10, "Privacy": a data-subject export returns everything held about a person, and an
 * erasure holds even against that person's events that were already accepted by /v1 and still
 * sat in the queue — delivered after the erasure, they recreate nothing (not even through an
 * identify from a new device), while other people's events in the same batches are stored.
 */
import { createExecutionContext, createMessageBatch, env, getQueueResult } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import worker from "../../worker";
import type { Message } from "../../worker/wire/events";
import type { QueuedBatch } from "../../worker/wire/queue";
import { api, makeSite } from "../helpers/api";
import { basic, ingest, recordingQueue } from "../ingest/helpers";

const DAY = 86_400_000;
const now = Date.now();
const at = (daysAgo: number) => new Date(now - daysAgo * DAY).toISOString();

// Ada, the person who asks to be forgotten, and two bystanders whose events share her batches.
const ada = { userId: "u-ada-1815", email: "ada@lovelace.example", laptop: "d-ada-laptop", phone: "d-ada-phone" };
const newDevice = "d-ada-tablet";
const bob = { device: "d-bob" };
const cy = { userId: "u-cy", device: "d-cy" };

let writeKey: string;
let messageSeq = 0;
const mid = (label: string) => `${label}-${messageSeq++}`;

/** Sends messages through POST /v1/batch and returns what the route put on the queue, undelivered. */
async function acceptAndHold(messages: Message[], route = "/v1/batch"): Promise<QueuedBatch[]> {
  const q = recordingQueue();
  const body = route === "/v1/batch" ? { batch: messages } : messages[0];
  const res = await ingest(route, { body, headers: basic(writeKey), env: { EVENTS: q.queue } });
  expect(res.status, await res.clone().text()).toBe(200);
  return q.sent;
}

let delivery = 0;
/** Delivers queue bodies through the Worker's queue handler, as the Queues runtime would. */
async function deliver(bodies: QueuedBatch[]) {
  const batch = createMessageBatch(
    "tessera-events",
    bodies.map((body) => ({ id: `privacy-${delivery++}`, timestamp: new Date(), attempts: 1, body })),
  );
  const ctx = createExecutionContext();
  await worker.queue(batch, env, ctx);
  const result: { ackAll: boolean } = await getQueueResult(batch, ctx);
  expect(result.ackAll).toBe(true);
}

async function lookup(type: string, value: string) {
  return api(`/api/profiles/lookup?type=${type}&value=${encodeURIComponent(value)}`);
}

async function suppressedTotal(): Promise<number> {
  const row = await env.DB.prepare("SELECT value FROM metrics WHERE name = 'suppressed' AND day = 0").first<{
    value: number;
  }>();
  return row?.value ?? 0;
}

interface ExportDoc {
  profile: { id: string; traits: Record<string, unknown>; identities: { type: string; value: string }[] };
  profileIds: string[];
  events: { messageId: string }[];
  notes: { body: string }[];
  tasks: { title: string }[];
  memberships: { segment: string }[];
  merges: { loserId: string }[];
}

const adaEvents: string[] = [];
const heldForAda: string[] = [];
const heldForOthers: string[] = [];
let adaId: string;
let exported: ExportDoc;
let erasure: { erased: boolean; profileIds: string[]; identifiers: number };
let suppressedBefore: number;
let held: QueuedBatch[] = [];

beforeAll(async () => {
  writeKey = (await makeSite({ name: "Privacy campaign" })).writeKey;
  const segment = await api("/api/segments", {
    body: { key: "priv-pro", name: "Pro", rule: { trait: "plan", op: "eq", value: "pro" } },
  });
  expect(segment.status).toBe(201);

  // Ada on her laptop, identified; then her phone, anonymous at first (its own profile), then
  // identified by email, which merges the phone's profile into hers.
  const laptop: Message[] = [
    { type: "page", messageId: mid("ada"), anonymousId: ada.laptop, timestamp: at(3), properties: { path: "/" } },
    {
      type: "identify",
      messageId: mid("ada"),
      anonymousId: ada.laptop,
      userId: ada.userId,
      timestamp: at(2),
      traits: { email: ada.email, plan: "pro", name: "Ada" },
    },
    {
      type: "track",
      messageId: mid("ada"),
      anonymousId: ada.laptop,
      userId: ada.userId,
      event: "Order Completed",
      timestamp: at(1),
      properties: { total: 120 },
    },
  ];
  const phoneAnonymous: Message[] = [
    { type: "page", messageId: mid("ada"), anonymousId: ada.phone, timestamp: at(1.5), properties: { path: "/p" } },
  ];
  const phoneIdentified: Message[] = [
    {
      type: "identify",
      messageId: mid("ada"),
      anonymousId: ada.phone,
      timestamp: at(1.2),
      traits: { email: ada.email, city: "London" },
    },
  ];
  const bystanders: Message[] = [
    { type: "page", messageId: mid("bob"), anonymousId: bob.device, timestamp: at(1), properties: { path: "/" } },
  ];
  for (const m of [...laptop, ...phoneAnonymous, ...phoneIdentified]) adaEvents.push(m.messageId as string);
  await deliver(await acceptAndHold([...laptop, ...bystanders]));
  await deliver(await acceptAndHold(phoneAnonymous));
  await deliver(await acceptAndHold(phoneIdentified));

  const found = await lookup("user_id", ada.userId);
  expect(found.status).toBe(200);
  adaId = ((await found.json()) as { id: string }).id;
  expect((await api(`/api/contacts/${adaId}/notes`, { body: { body: "Asked about invoices" } })).status).toBe(201);
  expect((await api(`/api/contacts/${adaId}/tasks`, { body: { title: "Call back Ada" } })).status).toBe(201);
  const res = await api(`/api/profiles/${adaId}/export`);
  expect(res.status).toBe(200);
  exported = (await res.json()) as ExportDoc;

  // Accepted by /v1 but not consumed yet: Ada's events (one from a new device that names her
  // email), mixed with two other people's, in the same batches.
  const first: Message[] = [
    {
      type: "track",
      messageId: mid("ada-held"),
      anonymousId: ada.laptop,
      userId: ada.userId,
      event: "Product Viewed",
      timestamp: at(0.1),
    },
    { type: "page", messageId: mid("bob-held"), anonymousId: bob.device, timestamp: at(0.1), properties: {} },
    {
      type: "identify",
      messageId: mid("ada-held"),
      anonymousId: newDevice,
      timestamp: at(0.05),
      traits: { email: ada.email.toUpperCase(), plan: "enterprise" },
    },
  ];
  const second: Message[] = [
    { type: "page", messageId: mid("ada-held"), anonymousId: ada.phone, timestamp: at(0.04), properties: {} },
    {
      type: "identify",
      messageId: mid("cy-held"),
      anonymousId: cy.device,
      userId: cy.userId,
      timestamp: at(0.04),
      traits: { plan: "pro" },
    },
  ];
  const single: Message = {
    type: "identify",
    messageId: mid("ada-held"),
    userId: ada.userId,
    timestamp: at(0.01),
    traits: { plan: "free" },
  };
  for (const m of [...first, ...second, single]) {
    (String(m.messageId).startsWith("ada") ? heldForAda : heldForOthers).push(m.messageId as string);
  }
  held = [
    ...(await acceptAndHold(first)),
    ...(await acceptAndHold(second)),
    ...(await acceptAndHold([single], "/v1/identify")),
  ];

  suppressedBefore = await suppressedTotal();
  const erased = await api(`/api/profiles/${adaId}`, { method: "DELETE" });
  expect(erased.status).toBe(200);
  erasure = (await erased.json()) as typeof erasure;
  await deliver(held);
});

describe("data-subject export", () => {
  it("returns the profile with its latest traits and every identifier, across the merged device", () => {
    expect(exported.profile.id).toBe(adaId);
    expect(exported.profile.traits).toEqual({ email: ada.email, plan: "pro", name: "Ada", city: "London" });
    const ids = exported.profile.identities.map((i) => `${i.type}:${i.value}`).sort();
    expect(ids).toEqual(
      [`anonymous_id:${ada.laptop}`, `anonymous_id:${ada.phone}`, `email:${ada.email}`, `user_id:${ada.userId}`].sort(),
    );
    expect(exported.profileIds).toHaveLength(2);
    expect(exported.merges.map((m) => m.loserId)).toEqual(exported.profileIds.filter((id) => id !== adaId));
  });

  it("returns every event of the person, including those stored under the merged-away profile", () => {
    expect(exported.events.map((e) => e.messageId).sort()).toEqual([...adaEvents].sort());
  });

  it("returns the person's notes, tasks and segment memberships", () => {
    expect(exported.notes.map((n) => n.body)).toEqual(["Asked about invoices"]);
    expect(exported.tasks.map((t) => t.title)).toEqual(["Call back Ada"]);
    expect(exported.memberships.map((m) => m.segment)).toEqual(["priv-pro"]);
  });
});

describe("erasure while the person's events are still queued", () => {
  it("erases both of the person's profiles and all four identifiers", () => {
    expect(erasure).toEqual({ erased: true, profileIds: expect.any(Array), identifiers: 4 });
    expect([...erasure.profileIds].sort()).toEqual([...exported.profileIds].sort());
  });

  it("recreates no identity for the person, not even the new device named with their email", async () => {
    for (const [type, value] of [
      ["user_id", ada.userId],
      ["email", ada.email],
      ["anonymous_id", ada.laptop],
      ["anonymous_id", ada.phone],
      ["anonymous_id", newDevice],
    ]) {
      expect((await lookup(type, value)).status, `${type}:${value}`).toBe(404);
    }
  });

  it("stores none of the person's queued events and keeps no row of them", async () => {
    const { results } = await env.DB.prepare(
      "SELECT message_id FROM events WHERE message_id IN (SELECT value FROM json_each(?1)) OR user_id = ?2 OR anonymous_id IN (?3, ?4, ?5)",
    )
      .bind(JSON.stringify([...adaEvents, ...heldForAda]), ada.userId, ada.laptop, ada.phone, newDevice)
      .all();
    expect(results).toEqual([]);
    expect((await api(`/api/profiles/${adaId}`)).status).toBe(404);
    expect((await api(`/api/profiles/${adaId}/export`)).status).toBe(404);
  });

  it("counts each of the person's queued events as suppressed", async () => {
    expect((await suppressedTotal()) - suppressedBefore).toBe(heldForAda.length);
  });

  it("stores other people's events from the same batches on their own profiles", async () => {
    const { results } = await env.DB.prepare(
      "SELECT message_id FROM events WHERE message_id IN (SELECT value FROM json_each(?1))",
    )
      .bind(JSON.stringify(heldForOthers))
      .all<{ message_id: string }>();
    expect(results.map((r) => r.message_id).sort()).toEqual([...heldForOthers].sort());
    const bobProfile = await lookup("anonymous_id", bob.device);
    const cyProfile = await lookup("user_id", cy.userId);
    expect(bobProfile.status).toBe(200);
    expect(cyProfile.status).toBe(200);
    expect(((await cyProfile.json()) as { traits: unknown }).traits).toEqual({ plan: "pro" });
  });

  it("leaves only the bystanders' profiles alive", async () => {
    const row = await env.DB.prepare("SELECT COUNT(*) AS n FROM profiles WHERE merged_into IS NULL").first<{
      n: number;
    }>();
    expect(row?.n).toBe(2);
  });

  it("recreates nothing when the queue delivers the same messages again", async () => {
    const before = await suppressedTotal();
    await deliver(held);
    expect((await lookup("anonymous_id", newDevice)).status).toBe(404);
    expect((await lookup("email", ada.email)).status).toBe(404);
    // Redelivered: the bystanders' events are duplicates now, Ada's are suppressed again.
    expect((await suppressedTotal()) - before).toBe(heldForAda.length);
  });
});
