import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { contactSchema } from "../../worker/crm/contact";
import { contactPage, mergeResultSchema, traitsSchema } from "../../worker/crm/contacts";
import { api, asSession, makeUser, seedProfile, sessionFor } from "../helpers/api";

let n = 0;
/** A tag no other test uses, to scope a list to the profiles a test seeded. */
const uniqueTag = () => `t${Date.now().toString(36)}${++n}`;

async function list(query: Record<string, string>) {
  const res = await api(`/api/contacts?${new URLSearchParams(query)}`);
  expect(res.status).toBe(200);
  return contactPage.parse(await res.json());
}

describe("contacts list", () => {
  it("lists live contacts newest activity first and leaves merged-away profiles out", async () => {
    const tag = uniqueTag();
    const old = await seedProfile({ tags: [tag], lastSeenAt: 1_000 });
    const recent = await seedProfile({ tags: [tag], lastSeenAt: 3_000 });
    await seedProfile({ tags: [tag], lastSeenAt: 2_000, mergedInto: recent.id });
    const never = await seedProfile({ tags: [tag], lastSeenAt: null });
    const page = await list({ tag });
    expect(page.items.map((c) => c.id)).toEqual([recent.id, old.id, never.id]);
    expect(page.nextCursor).toBeNull();
  });

  it("pages with a cursor without repeating or skipping anyone", async () => {
    const tag = uniqueTag();
    const ids: string[] = [];
    // Equal last-seen times on purpose: the id breaks ties.
    for (let i = 0; i < 7; i++) ids.push((await seedProfile({ tags: [tag], lastSeenAt: 5_000 + (i % 3) })).id);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { items: { id: string }[]; nextCursor: string | null } = await list({
        tag,
        limit: "3",
        ...(cursor ? { cursor } : {}),
      });
      seen.push(...page.items.map((c) => c.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toHaveLength(7);
    expect(new Set(seen)).toEqual(new Set(ids));
  });

  it("sorts by name case-insensitively, falling back to the email, anonymous profiles last", async () => {
    const tag = uniqueTag();
    const anon = await seedProfile({ tags: [tag] });
    const bob = await seedProfile({ tags: [tag], name: "bob" });
    const alice = await seedProfile({ tags: [tag], name: "Alice" });
    const carl = await seedProfile({ tags: [tag], email: "carl@x.example" });
    const page = await list({ tag, sort: "name" });
    expect(page.items.map((c) => c.id)).toEqual([alice.id, bob.id, carl.id, anon.id]);
    const desc = await list({ tag, sort: "name", order: "desc" });
    expect(desc.items.map((c) => c.id)).toEqual([anon.id, carl.id, bob.id, alice.id]);
  });

  it("pages through a name sort with a cursor", async () => {
    const tag = uniqueTag();
    for (const name of ["Ann", "ben", "Cid", "dee", "Eve"]) await seedProfile({ tags: [tag], name });
    const first = await list({ tag, sort: "name", limit: "2" });
    const second = await list({ tag, sort: "name", limit: "2", cursor: first.nextCursor ?? "" });
    const third = await list({ tag, sort: "name", limit: "2", cursor: second.nextCursor ?? "" });
    expect([...first.items, ...second.items, ...third.items].map((c) => c.name)).toEqual([
      "Ann",
      "ben",
      "Cid",
      "dee",
      "Eve",
    ]);
    expect(third.nextCursor).toBeNull();
  });

  it("refuses a cursor from another sort order", async () => {
    const tag = uniqueTag();
    for (let i = 0; i < 3; i++) await seedProfile({ tags: [tag] });
    const page = await list({ tag, limit: "1" });
    const res = await api(`/api/contacts?tag=${tag}&sort=name&cursor=${page.nextCursor}`);
    expect(res.status).toBe(400);
    expect((await api("/api/contacts?cursor=not-a-cursor")).status).toBe(400);
  });

  it("filters by stage, owner and tag, alone and together", async () => {
    const tag = uniqueTag();
    const { user } = await makeUser("marketer");
    const ids = async (query: Record<string, string>) => (await list(query)).items.map((c) => c.id).sort();
    const vipLead = await seedProfile({ tags: [tag, "vip"], lifecycleStage: "lead", ownerId: user.id });
    const vipCustomer = await seedProfile({ tags: [tag, "vip"], lifecycleStage: "customer", ownerId: user.id });
    await seedProfile({ tags: [tag], lifecycleStage: "lead" });
    const lead = await seedProfile({ tags: [tag], lifecycleStage: "lead", ownerId: user.id });
    expect(await ids({ owner: user.id })).toEqual([vipLead.id, vipCustomer.id, lead.id].sort());
    expect(await ids({ stage: "lead", owner: user.id })).toEqual([vipLead.id, lead.id].sort());
    expect(await ids({ tag, stage: "lead", owner: user.id })).toEqual([vipLead.id, lead.id].sort());
    expect(await ids({ tag: "vip", stage: "lead", owner: user.id })).toEqual([vipLead.id]);
  });

  it("filters contacts without an owner with owner=none", async () => {
    const tag = uniqueTag();
    const { user } = await makeUser("marketer");
    const free = await seedProfile({ tags: [tag] });
    await seedProfile({ tags: [tag], ownerId: user.id });
    expect((await list({ tag, owner: "none" })).items.map((c) => c.id)).toEqual([free.id]);
  });

  it("filters by segment membership", async () => {
    const tag = uniqueTag();
    const member = await seedProfile({ tags: [tag] });
    await seedProfile({ tags: [tag] });
    await env.DB.prepare("INSERT INTO memberships (segment_key, profile_id, entered_at) VALUES (?, ?, 0)")
      .bind(`seg_${tag}`, member.id)
      .run();
    expect((await list({ segment: `seg_${tag}` })).items.map((c) => c.id)).toEqual([member.id]);
    expect((await list({ segment: `seg_${tag}`, tag })).items.map((c) => c.id)).toEqual([member.id]);
  });

  it("searches by email prefix, name prefix (any case) and any identifier value", async () => {
    const tag = uniqueTag();
    const byEmail = await seedProfile({ tags: [tag], email: `${tag}-ann@x.example` });
    const byName = await seedProfile({ tags: [tag], name: `${tag.toUpperCase()} Bee` });
    const byId = await seedProfile({ tags: [tag] });
    await env.DB.prepare("INSERT INTO identities (type, value, profile_id, created_at) VALUES ('user_id', ?, ?, 0)")
      .bind(`U-${tag}`, byId.id)
      .run();
    expect((await list({ q: `${tag}-an` })).items.map((c) => c.id)).toEqual([byEmail.id]);
    expect((await list({ q: `${tag} b`, sort: "name" })).items.map((c) => c.id)).toEqual([byName.id]);
    expect((await list({ q: `U-${tag}` })).items.map((c) => c.id)).toEqual([byId.id]);
    expect((await list({ q: tag, sort: "created" })).items.map((c) => c.id).sort()).toEqual(
      [byEmail.id, byName.id].sort(),
    );
  });

  it("treats empty query parameters as no filter", async () => {
    expect((await api("/api/contacts?q=&tag=&stage=&limit=")).status).toBe(200);
  });

  it("rejects out-of-range parameters with 400", async () => {
    for (const q of [
      "limit=0",
      "limit=201",
      "sort=email",
      "order=up",
      `q=${"x".repeat(201)}`,
      "stage=Not%20A%20Stage",
    ]) {
      expect((await api(`/api/contacts?${q}`)).status, q).toBe(400);
    }
  });
});

describe("contact CRM fields", () => {
  it("sets lifecycle stage, owner and tags, and the tag filter finds the contact", async () => {
    const contact = await seedProfile();
    const { user } = await makeUser("marketer");
    const tag = uniqueTag();
    const res = await api(`/api/contacts/${contact.id}`, {
      method: "PATCH",
      body: { lifecycleStage: "MQL", ownerId: user.id, tags: [tag, " vip ", tag] },
    });
    expect(res.status).toBe(200);
    const updated = contactSchema.parse(await res.json());
    expect(updated).toMatchObject({ lifecycleStage: "mql", ownerId: user.id, tags: [tag, "vip"] });
    expect((await list({ tag })).items.map((c) => c.id)).toEqual([contact.id]);
  });

  it("replaces tags, so a removed tag no longer matches", async () => {
    const tag = uniqueTag();
    const contact = await seedProfile({ tags: [tag] });
    await api(`/api/contacts/${contact.id}`, { method: "PATCH", body: { tags: ["other"] } });
    expect((await list({ tag })).items).toEqual([]);
  });

  it("keeps the tag filter right when the pipeline merges or erases profiles", async () => {
    const tag = uniqueTag();
    const survivor = await seedProfile({ tags: ["a"] });
    const loser = await seedProfile({ tags: [tag] });
    // What a merge writes: united tags on the survivor, the loser marked merged.
    await env.DB.batch([
      env.DB.prepare("UPDATE profiles SET tags = ? WHERE id = ?").bind(JSON.stringify(["a", tag]), survivor.id),
      env.DB.prepare("UPDATE profiles SET merged_into = ? WHERE id = ?").bind(survivor.id, loser.id),
    ]);
    expect((await list({ tag })).items.map((c) => c.id)).toEqual([survivor.id]);
    await env.DB.prepare("DELETE FROM profiles WHERE id = ?").bind(survivor.id).run();
    const rows = await env.DB.prepare("SELECT count(*) AS n FROM profile_tags WHERE profile_id IN (?, ?)")
      .bind(survivor.id, loser.id)
      .first<{ n: number }>();
    expect(rows?.n).toBe(0);
  });

  it("accepts custom stages and clears a stage with null", async () => {
    const contact = await seedProfile();
    const custom = await api(`/api/contacts/${contact.id}`, { method: "PATCH", body: { lifecycleStage: "trial_2" } });
    expect(contactSchema.parse(await custom.json()).lifecycleStage).toBe("trial_2");
    const cleared = await api(`/api/contacts/${contact.id}`, { method: "PATCH", body: { lifecycleStage: null } });
    expect(contactSchema.parse(await cleared.json()).lifecycleStage).toBeNull();
  });

  it("rejects invalid stages, too many or too long tags, and unknown owners", async () => {
    const contact = await seedProfile();
    for (const body of [
      { lifecycleStage: "has spaces" },
      { lifecycleStage: "x".repeat(33) },
      { tags: Array.from({ length: 51 }, (_, i) => `t${i}`) },
      { tags: ["x".repeat(51)] },
      { ownerId: "usr_nobody" },
      {},
    ]) {
      const res = await api(`/api/contacts/${contact.id}`, { method: "PATCH", body });
      expect(res.status, JSON.stringify(body)).toBe(400);
    }
  });

  it("writes to the survivor when given a merged-away id", async () => {
    const survivor = await seedProfile();
    const loser = await seedProfile({ mergedInto: survivor.id });
    const res = await api(`/api/contacts/${loser.id}`, { method: "PATCH", body: { lifecycleStage: "customer" } });
    expect(contactSchema.parse(await res.json())).toMatchObject({ id: survivor.id, lifecycleStage: "customer" });
    const read = await api(`/api/contacts/${loser.id}`);
    expect(contactSchema.parse(await read.json()).id).toBe(survivor.id);
  });

  it("answers 404 for an unknown contact", async () => {
    expect((await api("/api/contacts/prf_missing", { method: "PATCH", body: { tags: [] } })).status).toBe(404);
  });

  it("does not let a viewer change a contact", async () => {
    const viewer = await sessionFor("viewer");
    const contact = await seedProfile();
    const res = await asSession(viewer, `/api/contacts/${contact.id}`, { method: "PATCH", body: { tags: ["x"] } });
    expect(res.status).toBe(403);
  });
});

describe("contacts created and edited by hand", () => {
  it("queues a new contact as an identify event and answers 202", async () => {
    const marketer = await sessionFor("marketer");
    const res = await asSession(marketer, "/api/contacts", {
      body: { email: "New.Person@Example.com", name: "New Person", phone: "+44 20 7946 0958", traits: { plan: "pro" } },
    });
    expect(res.status).toBe(202);
    const body = (await res.json()) as { status: string; messageId: string };
    expect(body.status).toBe("queued");
    expect(body.messageId).toMatch(/^crm_/);
  });

  it("rejects a contact without a valid email, or with unsafe traits", async () => {
    for (const body of [
      { name: "No Email" },
      { email: "not an email" },
      { email: "a@b.example", phone: "12" },
      { email: "a@b.example", traits: { constructor: { prototype: { polluted: true } } } },
      { email: "a@b.example", traits: { big: "x".repeat(20_000) } },
    ]) {
      const res = await api("/api/contacts", { body });
      expect(res.status, JSON.stringify(body).slice(0, 80)).toBe(400);
    }
  });

  it("drops a __proto__ trait instead of letting it reach an object's prototype", () => {
    const traits = traitsSchema.parse(JSON.parse('{"__proto__": {"polluted": true}, "plan": "pro"}'));
    expect(Object.keys(traits)).toEqual(["plan"]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((traits as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("answers 404 when the named site does not exist", async () => {
    expect((await api("/api/contacts", { body: { email: "a@b.example", siteId: "site_missing" } })).status).toBe(404);
  });

  it("queues a trait edit for a contact that has an identifier", async () => {
    const contact = await seedProfile({ email: "known@x.example" });
    await env.DB.prepare("INSERT INTO identities (type, value, profile_id, created_at) VALUES ('email', ?, ?, 0)")
      .bind(`known-${contact.id}@x.example`, contact.id)
      .run();
    const res = await api(`/api/contacts/${contact.id}/traits`, {
      method: "PATCH",
      body: { traits: { plan: "team" } },
    });
    expect(res.status).toBe(202);
  });

  it("refuses a trait edit for a contact without any identifier", async () => {
    const contact = await seedProfile();
    const res = await api(`/api/contacts/${contact.id}/traits`, {
      method: "PATCH",
      body: { traits: { plan: "team" } },
    });
    expect(res.status).toBe(409);
  });

  it("merges two contacts by hand: the loser's id and notes then belong to the winner", async () => {
    const winner = await seedProfile({ email: "w@x.example", createdAt: 1_000 });
    const loser = await seedProfile({ email: "l@x.example", createdAt: 2_000 });
    await api(`/api/contacts/${loser.id}/notes`, { body: { body: "from the loser" } });
    const res = await api("/api/contacts/merge", { body: { winnerId: winner.id, loserId: loser.id } });
    expect(res.status).toBe(200);
    const body = mergeResultSchema.parse(await res.json());
    expect(body.contact.id).toBe(winner.id);
    expect(contactSchema.parse(await (await api(`/api/contacts/${loser.id}`)).json()).id).toBe(winner.id);
    const notes = (await (await api(`/api/contacts/${winner.id}/notes`)).json()) as { items: { body: string }[] };
    expect(notes.items.map((n) => n.body)).toEqual(["from the loser"]);
  });

  it("refuses to merge a contact with itself or with an unknown contact", async () => {
    const one = await seedProfile();
    expect((await api("/api/contacts/merge", { body: { winnerId: one.id, loserId: one.id } })).status).toBe(400);
    expect((await api("/api/contacts/merge", { body: { winnerId: one.id, loserId: "prf_missing" } })).status).toBe(404);
  });
});
