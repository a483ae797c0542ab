import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { KEYS_PER_ROW, latestSchema, RING_ROWS, recentEventWrites } from "../../worker/events";
import { mergeProfiles } from "../../worker/identity";
import { api, asSession, BASE, env, sessionFor } from "../helpers/api";
import { identify, makeEvent, makeSiteRow, page, profileOf, run, T0, uid } from "../pipeline/factory";

async function latest(query: string) {
  const res = await api(`/api/events/latest?${query}`);
  const text = await res.text();
  expect(res.status, text).toBe(200);
  return latestSchema.parse(JSON.parse(text));
}

/** Tracks `names` in order on one visitor of `site` (one consumer batch each, like separate requests). */
async function track(site: string, names: string[], anonymousId = uid("a")) {
  const ids: string[] = [];
  for (const [i, event] of names.entries()) {
    const e = makeEvent({ anonymousId, event, timestamp: T0 + i });
    ids.push(e.messageId);
    await run(site, [e]);
  }
  return ids;
}

describe("GET /api/events/latest", () => {
  it("lists a site's latest events newest first, as stored", async () => {
    const site = await makeSiteRow();
    const anon = uid("a");
    const ids = await track(site, ["Viewed", "Added", "Bought"], anon);
    const feed = await latest(`site=${site}`);
    expect(feed.items.map((e) => e.messageId)).toEqual([...ids].reverse());
    expect(feed.items[0]).toMatchObject({
      siteId: site,
      type: "track",
      event: "Bought",
      anonymousId: anon,
      profileId: await profileOf("anonymous_id", anon),
      timestamp: new Date(T0 + 2).toISOString(),
    });
    expect(feed.truncated).toBe(false);
  });

  it("returns only events newer than the cursor, and an unchanged cursor when nothing arrived", async () => {
    const site = await makeSiteRow();
    await track(site, ["Before"]);
    const first = await latest(`site=${site}`);
    const fresh = await track(site, ["After 1", "After 2"]);
    const second = await latest(`site=${site}&after=${first.cursor}`);
    expect(second.items.map((e) => e.messageId)).toEqual([...fresh].reverse());
    const third = await latest(`site=${site}&after=${second.cursor}`);
    expect(third.items).toEqual([]);
    expect(third.cursor).toBe(second.cursor);
  });

  it("filters by type", async () => {
    const site = await makeSiteRow();
    const anon = uid("a");
    await run(site, [page({ anonymousId: anon, timestamp: T0 }), makeEvent({ anonymousId: anon, timestamp: T0 + 1 })]);
    const feed = await latest(`site=${site}&type=page`);
    expect(feed.items.map((e) => e.type)).toEqual(["page"]);
  });

  it("returns at most `limit` events and says that older ones were left out", async () => {
    const site = await makeSiteRow();
    const ids = await track(site, ["One", "Two", "Three"]);
    const feed = await latest(`site=${site}&limit=2`);
    expect(feed.items.map((e) => e.messageId)).toEqual([ids[2], ids[1]]);
    expect(feed.truncated).toBe(true);
  });

  it("shows the surviving profile for an event stored on a profile merged away since", async () => {
    const site = await makeSiteRow();
    const [a, b] = [uid("a"), uid("a")];
    await run(site, [identify({ anonymousId: a, traits: { name: "Ada" } })]);
    const [id] = await track(site, ["On the laptop"], b);
    const [winner, loser] = [
      (await profileOf("anonymous_id", a)) as string,
      (await profileOf("anonymous_id", b)) as string,
    ];
    await mergeProfiles(env.DB, winner, loser, T0 + 60_000);
    const feed = await latest(`site=${site}`);
    expect(feed.items.find((e) => e.messageId === id)?.profileId).toBe(winner);
  });

  it("starts again from the newest event when the cursor is past it (the newest rows were erased)", async () => {
    const site = await makeSiteRow();
    const stale = await latest(`site=${site}&after=999999999999`);
    expect(stale.items).toEqual([]);
    const ids = await track(site, ["Later"]);
    const next = await latest(`site=${site}&after=${stale.cursor}`);
    expect(next.items.map((e) => e.messageId)).toEqual(ids);
  });

  it("lists a batch larger than one ring row newest first, in the order it was stored", async () => {
    const site = await makeSiteRow();
    const anon = uid("a");
    const events = Array.from({ length: KEYS_PER_ROW + 50 }, (_, i) =>
      makeEvent({ anonymousId: anon, event: `Step ${i}`, timestamp: T0 + i }),
    );
    await run(site, events);
    const feed = await latest(`site=${site}&limit=100`);
    expect(feed.items.map((e) => e.messageId)).toEqual(
      events
        .slice(-100)
        .map((e) => e.messageId)
        .reverse(),
    );
    expect(feed.truncated).toBe(true);
  });

  it("says events were left out when the ring recycled rows the cursor had not seen", async () => {
    const site = await makeSiteRow();
    await track(site, ["Seen"]);
    const first = await latest(`site=${site}`);
    expect(first.truncated).toBe(false);
    const other = Array.from({ length: RING_ROWS + 1 }, (_, i) => ({
      siteId: "site_elsewhere",
      messageId: `m${i}`,
      type: "track",
    }));
    // One ring row each, as RING_ROWS + 1 consumer batches would write them.
    await env.DB.batch(other.flatMap((key) => recentEventWrites(env.DB, [key])));
    const later = await latest(`site=${site}&after=${first.cursor}`);
    expect(later.items).toEqual([]);
    expect(later.truncated).toBe(true);
    expect(Number(later.cursor)).toBe(Number(first.cursor) + RING_ROWS + 1);
  });

  it("rejects a malformed cursor, an unknown type and a limit above 100", async () => {
    for (const query of ["after=abc", "after=-1", "type=click", "limit=101", "limit=0", `site=${"s".repeat(101)}`]) {
      const res = await api(`/api/events/latest?${query}`);
      expect(res.status, query).toBe(400);
    }
  });

  it("lets a viewer watch the feed, and nobody without credentials", async () => {
    const viewer = await sessionFor("viewer");
    expect((await asSession(viewer, "/api/events/latest")).status).toBe(200);
    expect((await SELF.fetch(`${BASE}/api/events/latest`)).status).toBe(401);
  });

  it("is documented in the OpenAPI document", async () => {
    const doc = (await (await SELF.fetch(`${BASE}/api/openapi.json`)).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    expect(doc.paths["/api/events/latest"]).toHaveProperty("get");
  });
});
