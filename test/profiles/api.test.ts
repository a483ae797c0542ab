import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { eventItemSchema, profileSchema, profileSummarySchema } from "../../worker/profiles/read";
import { api, asSession, BASE, sessionFor } from "../helpers/api";
import { identify, makeEvent, makeSiteRow, page, profileOf, run, T0, uid } from "../pipeline/factory";

const MIN = 60_000;

async function json<T>(res: Response, status = 200): Promise<T> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  return JSON.parse(text) as T;
}

/** Two devices of one person, merged: returns the survivor and the merged-away profile. */
async function mergedPerson(site: string) {
  const [a, b, user] = [uid("a"), uid("a"), uid("u")];
  await run(site, [identify({ anonymousId: a, userId: user, traits: { plan: "pro" }, timestamp: T0 })]);
  await run(site, [
    identify({ anonymousId: b, traits: { email: `${b}@x.io`, coupon: "B" }, timestamp: T0 + MIN }),
    page({ anonymousId: b, timestamp: T0 + 2 * MIN, properties: { path: "/from-b" } }),
  ]);
  const survivor = (await profileOf("user_id", user)) as string;
  const loser = (await profileOf("anonymous_id", b)) as string;
  await run(site, [identify({ anonymousId: b, userId: user, timestamp: T0 + 3 * MIN })]);
  return { survivor, loser, a, b, user };
}

describe("GET /api/profiles/:id", () => {
  it("answers the 360° view, and an old merged id answers with the survivor", async () => {
    const site = await makeSiteRow();
    const { survivor, loser, user, b } = await mergedPerson(site);
    const view = profileSchema.parse(await json(await api(`/api/profiles/${loser}`)));
    expect(view.id).toBe(survivor);
    expect(view.mergedFrom).toEqual([loser]);
    expect(view.identities).toContainEqual({ type: "user_id", value: user });
    expect(view.identities).toContainEqual({ type: "anonymous_id", value: b });
    expect(view.traits).toMatchObject({ plan: "pro", coupon: "B", email: `${b}@x.io` });
    expect(view.traitSources.coupon).toMatchObject({ at: new Date(T0 + MIN).toISOString(), source: site });
    expect(view.computed).toMatchObject({ page_views: 1, first_seen: new Date(T0).toISOString() });
  });

  it("answers 404 for an unknown profile", async () => {
    const res = await api("/api/profiles/prf_nobody");
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("not_found");
  });

  it("needs credentials", async () => {
    const res = await SELF.fetch(`${BASE}/api/profiles/prf_nobody`);
    expect(res.status).toBe(401);
  });
});

describe("GET /api/profiles/lookup", () => {
  it("finds a profile by an identifier written differently (normalised like the pipeline)", async () => {
    const site = await makeSiteRow();
    const anon = uid("a");
    await run(site, [identify({ anonymousId: anon, traits: { email: `${anon}@shop.io` } })]);
    const found = profileSchema.parse(
      await json(
        await api(`/api/profiles/lookup?type=email&value=${encodeURIComponent(`  ${anon.toUpperCase()}@SHOP.IO`)}`),
      ),
    );
    expect(found.id).toBe(await profileOf("anonymous_id", anon));
  });

  it("answers 404 for an unknown identifier and 400 for a malformed type", async () => {
    expect((await api(`/api/profiles/lookup?type=user_id&value=${uid("nobody")}`)).status).toBe(404);
    expect((await api("/api/profiles/lookup?type=Bad%20Type&value=x")).status).toBe(400);
    expect((await api("/api/profiles/lookup?type=email")).status).toBe(400);
  });
});

describe("GET /api/profiles", () => {
  it("searches by email prefix, name prefix (any case) and identifier value", async () => {
    const site = await makeSiteRow();
    const tag = uid("zq");
    const [a, b, c] = [uid("a"), uid("a"), uid("a")];
    await run(site, [identify({ anonymousId: a, traits: { email: `${tag}.mail@x.io` } })]);
    await run(site, [identify({ anonymousId: b, traits: { name: `${tag.toUpperCase()} Person` } })]);
    await run(site, [identify({ anonymousId: c, userId: `${tag}-user-1` })]);
    const found = await json<{ items: { id: string }[] }>(await api(`/api/profiles?q=${tag}`));
    const ids = found.items.map((i) => profileSummarySchema.parse(i).id).sort();
    const expected = await Promise.all([a, b, c].map((x) => profileOf("anonymous_id", x)));
    expect(ids).toEqual(expected.sort());
  });

  it("pages newest activity first with a cursor, without gaps or repeats", async () => {
    const site = await makeSiteRow();
    const tag = uid("pg");
    const anons = [uid("a"), uid("a"), uid("a"), uid("a"), uid("a")];
    for (const [i, anon] of anons.entries()) {
      await run(site, [identify({ anonymousId: anon, traits: { email: `${tag}${i}@x.io` }, timestamp: T0 + i * MIN })]);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { items: { id: string }[]; nextCursor: string | null } = await json(
        await api(`/api/profiles?q=${tag}&limit=2${cursor ? `&cursor=${cursor}` : ""}`),
      );
      seen.push(...page.items.map((i) => i.id));
      cursor = page.nextCursor;
    } while (cursor);
    const expected = await Promise.all([...anons].reverse().map((a) => profileOf("anonymous_id", a)));
    expect(seen).toEqual(expected);
  });

  it("filters by segment membership", async () => {
    const site = await makeSiteRow();
    const [a, b, segment] = [uid("a"), uid("a"), uid("seg")];
    await run(site, [page({ anonymousId: a }), page({ anonymousId: b })]);
    const member = (await profileOf("anonymous_id", a)) as string;
    await env.DB.prepare("INSERT INTO memberships (segment_key, profile_id, entered_at) VALUES (?, ?, ?)")
      .bind(segment, member, T0)
      .run();
    const found = await json<{ items: { id: string }[] }>(await api(`/api/profiles?segment=${segment}`));
    expect(found.items.map((i) => i.id)).toEqual([member]);
  });

  it("rejects a forged cursor and an out-of-range limit", async () => {
    expect((await api("/api/profiles?cursor=not-a-cursor")).status).toBe(400);
    expect((await api("/api/profiles?limit=1000")).status).toBe(400);
  });
});

describe("GET /api/profiles/:id/events", () => {
  it("lists the events of the profile and of the profiles merged into it, newest first, in pages", async () => {
    const site = await makeSiteRow();
    const { survivor } = await mergedPerson(site);
    const first = await json<{ items: unknown[]; nextCursor: string | null }>(
      await api(`/api/profiles/${survivor}/events?limit=2`),
    );
    const second = await json<{ items: unknown[]; nextCursor: string | null }>(
      await api(`/api/profiles/${survivor}/events?limit=2&cursor=${first.nextCursor}`),
    );
    const items = [...first.items, ...second.items].map((i) => eventItemSchema.parse(i));
    expect(second.nextCursor).toBeNull();
    expect(items.map((i) => i.timestamp)).toEqual(
      [T0 + 3 * MIN, T0 + 2 * MIN, T0 + MIN, T0].map((t) => new Date(t).toISOString()),
    );
    expect(items[1]).toMatchObject({ type: "page", properties: { path: "/from-b" } });
  });
});

describe("POST /api/profiles/:id/unmerge", () => {
  it("splits the latest merge back out: identities, traits and totals return to the restored profile", async () => {
    const site = await makeSiteRow();
    const { survivor, loser, b, user } = await mergedPerson(site);
    const res = await json<{ mergeId: string; restoredId: string; survivorId: string }>(
      await api(`/api/profiles/${survivor}/unmerge`, { body: {} }),
    );
    expect(res).toMatchObject({ restoredId: loser, survivorId: survivor });
    expect(await profileOf("anonymous_id", b)).toBe(loser);
    expect(await profileOf("user_id", user)).toBe(survivor);

    const restored = profileSchema.parse(await json(await api(`/api/profiles/${loser}`)));
    expect(restored.id).toBe(loser);
    expect(restored.traits).toMatchObject({ coupon: "B" });
    expect(restored.computed).toMatchObject({ page_views: 1 });
    const kept = profileSchema.parse(await json(await api(`/api/profiles/${survivor}`)));
    expect(kept.traits).toEqual({ plan: "pro" });
    expect(kept.mergedFrom).toEqual([]);
    expect(kept.computed).toMatchObject({ page_views: 0 });
    // The restored profile's events are its own again.
    const events = await json<{ items: { profileId: string }[] }>(await api(`/api/profiles/${loser}/events`));
    expect(events.items.length).toBeGreaterThan(0);
    expect(new Set(events.items.map((e) => e.profileId))).toEqual(new Set([loser]));

    const merge = await env.DB.prepare("SELECT undone_at FROM profile_merges WHERE id = ?")
      .bind(res.mergeId)
      .first<{ undone_at: number | null }>();
    expect(merge?.undone_at).not.toBeNull();
  });

  it("answers 404 when the profile has no merge to undo", async () => {
    const site = await makeSiteRow();
    const anon = uid("a");
    await run(site, [page({ anonymousId: anon })]);
    const res = await api(`/api/profiles/${await profileOf("anonymous_id", anon)}/unmerge`, { body: {} });
    expect(res.status).toBe(404);
  });
});

describe("privacy", () => {
  it("erases a person so that a replayed or queued event of theirs is dropped, not recreated", async () => {
    const site = await makeSiteRow();
    const { survivor, loser, b, user } = await mergedPerson(site);
    const erased = await json<{ profileIds: string[] }>(await api(`/api/profiles/${survivor}`, { method: "DELETE" }));
    expect(erased.profileIds.sort()).toEqual([survivor, loser].sort());
    expect((await api(`/api/profiles/${survivor}`)).status).toBe(404);
    expect((await api(`/api/profiles/${loser}`)).status).toBe(404);
    const left = await env.DB.prepare(
      "SELECT (SELECT count(*) FROM events WHERE profile_id IN (?1, ?2)) + (SELECT count(*) FROM identities WHERE profile_id IN (?1, ?2)) AS n",
    )
      .bind(survivor, loser)
      .first<{ n: number }>();
    expect(left?.n).toBe(0);

    const result = await run(site, [
      page({ anonymousId: b, timestamp: T0 + 10 * MIN }),
      makeEvent({ userId: user, event: "Came Back", timestamp: T0 + 11 * MIN }),
    ]);
    expect(result).toMatchObject({ stored: 0, suppressed: 2 });
    expect(await profileOf("anonymous_id", b)).toBeNull();
    expect((await api(`/api/profiles/lookup?type=user_id&value=${user}`)).status).toBe(404);
  });

  it("exports everything held about a person", async () => {
    const site = await makeSiteRow();
    const { survivor, loser, user } = await mergedPerson(site);
    await env.DB.batch([
      env.DB.prepare("INSERT INTO notes (id, profile_id, body, created_at) VALUES (?, ?, 'Called', ?)").bind(
        uid("note_"),
        loser,
        T0,
      ),
      env.DB.prepare(
        "INSERT INTO tasks (id, profile_id, title, created_at, updated_at) VALUES (?, ?, 'Follow up', ?, ?)",
      ).bind(uid("task_"), survivor, T0, T0),
      env.DB.prepare("INSERT INTO memberships (segment_key, profile_id, entered_at) VALUES (?, ?, ?)").bind(
        uid("seg"),
        survivor,
        T0,
      ),
    ]);
    // A refused link, so the export has a warning to show.
    await run(site, [identify({ userId: user, traits: { phone: "000-0000-000" }, timestamp: T0 + 10 * MIN })]);
    const data = await json<{
      profile: { id: string };
      profileIds: string[];
      events: unknown[];
      notes: unknown[];
      tasks: unknown[];
      memberships: unknown[];
      merges: { loserId: string; snapshot: unknown }[];
      warnings: { reason: string }[];
    }>(await api(`/api/profiles/${loser}/export`));
    expect(data.profile.id).toBe(survivor);
    expect(data.profileIds.sort()).toEqual([survivor, loser].sort());
    expect(data.events).toHaveLength(5);
    expect(data.notes).toHaveLength(1);
    expect(data.tasks).toHaveLength(1);
    expect(data.memberships).toHaveLength(1);
    expect(data.merges).toEqual([expect.objectContaining({ loserId: loser, snapshot: expect.any(Object) })]);
    expect(data.warnings.map((w) => w.reason)).toContain("blocklisted");
  });
});

describe("roles", () => {
  it("lets a viewer read profiles but not unmerge, erase or export them", async () => {
    const site = await makeSiteRow();
    const anon = uid("a");
    await run(site, [page({ anonymousId: anon })]);
    const id = (await profileOf("anonymous_id", anon)) as string;
    const viewer = await sessionFor("viewer");
    expect((await asSession(viewer, `/api/profiles/${id}`)).status).toBe(200);
    expect((await asSession(viewer, `/api/profiles/${id}/unmerge`, { body: {} })).status).toBe(403);
    expect((await asSession(viewer, `/api/profiles/${id}`, { method: "DELETE" })).status).toBe(403);
    expect((await asSession(viewer, `/api/profiles/${id}/export`)).status).toBe(403);
    expect(await profileOf("anonymous_id", anon)).toBe(id);
  });

  it("lets a marketer unmerge but not erase", async () => {
    const site = await makeSiteRow();
    const { survivor } = await mergedPerson(site);
    const marketer = await sessionFor("marketer");
    expect((await asSession(marketer, `/api/profiles/${survivor}`, { method: "DELETE" })).status).toBe(403);
    expect((await asSession(marketer, `/api/profiles/${survivor}/unmerge`, { body: {} })).status).toBe(200);
  });
});

describe("identity policy API", () => {
  it("declares a custom identifier type that the pipeline then links", async () => {
    const site = await makeSiteRow();
    const res = await json<{ effective: { types: Record<string, { limit: number; priority: number }> } }>(
      await api(`/api/sites/${site}/identity-policy`, {
        method: "PUT",
        body: { types: { crm_id: { limit: 1, priority: 2 } }, blocklist: ["test"] },
      }),
    );
    expect(res.effective.types.crm_id).toEqual({ limit: 1, priority: 2 });
    const [a, crm] = [uid("a"), uid("crm")];
    await run(site, [identify({ anonymousId: a, traits: { crm_id: crm } })]);
    expect(await profileOf("crm_id", crm)).toBe(await profileOf("anonymous_id", a));
  });

  it("refuses a policy that would let one profile hold two user ids", async () => {
    const site = await makeSiteRow();
    const res = await api(`/api/sites/${site}/identity-policy`, {
      method: "PUT",
      body: { types: { user_id: { limit: 2 } } },
    });
    expect(res.status).toBe(400);
  });

  it("answers 404 for an unknown site", async () => {
    const res = await api("/api/sites/site_nope/identity-policy", { method: "PUT", body: {} });
    expect(res.status).toBe(404);
  });
});

describe("OpenAPI", () => {
  it("documents the profile, identity and dead-letter routes", async () => {
    const doc = (await (await SELF.fetch(`${BASE}/api/openapi.json`)).json()) as { paths: Record<string, unknown> };
    for (const path of [
      "/api/profiles",
      "/api/profiles/lookup",
      "/api/profiles/{id}",
      "/api/profiles/{id}/events",
      "/api/profiles/{id}/unmerge",
      "/api/profiles/{id}/export",
      "/api/sites/{id}/identity-policy",
      "/api/dead-letters",
    ]) {
      expect(doc.paths, path).toHaveProperty([path]);
    }
  });
});
