import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { statsSchema } from "../../worker/stats";
import { api } from "../helpers/api";
import { identify, makeSiteRow, page, profileOf, run, uid } from "../pipeline/factory";

async function stats() {
  return statsSchema.parse(await (await api("/api/stats")).json());
}

/** What the totals stand for, counted from scratch. */
async function freshCounts() {
  const row = await env.DB.prepare(
    `SELECT count(*) AS profiles, coalesce(sum(identified), 0) AS identified
     FROM profiles WHERE merged_into IS NULL`,
  ).first<{ profiles: number; identified: number }>();
  return { profiles: row?.profiles ?? 0, identifiedProfiles: row?.identified ?? 0 };
}

async function expectTotalsToMatchCount() {
  const { profiles, identifiedProfiles } = await stats();
  expect({ profiles, identifiedProfiles }).toEqual(await freshCounts());
}

describe("GET /api/stats profile totals", () => {
  it("equal a fresh count after creates, an identify, pipeline and manual merges, an erasure and an unmerge", async () => {
    const site = await makeSiteRow();
    const [a1, a2, a3, a4] = [uid("a"), uid("a"), uid("a"), uid("a")];
    const user = uid("u");
    const before = await stats();

    await run(site, [page({ anonymousId: a1 }), page({ anonymousId: a2 }), page({ anonymousId: a3 })]);
    expect((await stats()).profiles).toBe(before.profiles + 3);
    await expectTotalsToMatchCount();

    await run(site, [identify({ anonymousId: a1, userId: user })]);
    expect((await stats()).identifiedProfiles).toBe(before.identifiedProfiles + 1);
    await expectTotalsToMatchCount();

    // The stitcher merges a4's new anonymous profile into the signed-in one.
    await run(site, [page({ anonymousId: a4 })]);
    await run(site, [identify({ anonymousId: a4, userId: user })]);
    await expectTotalsToMatchCount();

    const [p1, p2, p3] = await Promise.all([a1, a2, a3].map((a) => profileOf("anonymous_id", a)));
    const merged = await api("/api/profiles/merge", { body: { winnerId: p1, loserId: p2 } });
    expect(merged.status).toBe(200);
    expect((await stats()).profiles).toBe(before.profiles + 2);
    await expectTotalsToMatchCount();

    expect((await api(`/api/profiles/${p3}`, { method: "DELETE" })).status).toBe(200);
    expect((await stats()).profiles).toBe(before.profiles + 1);
    await expectTotalsToMatchCount();

    const { mergeId } = (await merged.json()) as { mergeId: string };
    expect((await api(`/api/profiles/${p1}/unmerge`, { body: { mergeId } })).status).toBe(200);
    expect((await stats()).profiles).toBe(before.profiles + 2);
    await expectTotalsToMatchCount();
  });
});
