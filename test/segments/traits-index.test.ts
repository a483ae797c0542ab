/**
 * `profile_traits`, the indexed mirror of live profiles' top-level traits that trait conditions
 * read: kept exact through the pipeline's identify, unset and merge, manual merge and unmerge,
 * erasure; and the preview's trait count reads it through its indexes instead of every profile.
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Condition } from "../../worker/segments/rule";
import { previewRule } from "../../worker/segments/service";
import { compileSet, prepare } from "../../worker/segments/sql";
import { api } from "../helpers/api";
import { identify, makeSiteRow, page, profileOf, profileRow, run, T0, uid } from "../pipeline/factory";

interface MirrorRow {
  key: string;
  type: string;
  value_text: string | null;
  value_num: number | null;
}

async function mirrorOf(profileId: string): Promise<MirrorRow[]> {
  const { results } = await env.DB.prepare(
    "SELECT key, type, value_text, value_num FROM profile_traits WHERE profile_id = ? ORDER BY key",
  )
    .bind(profileId)
    .all<MirrorRow>();
  return results;
}

/** What the mirror must hold for a traits document: its non-null top-level values. */
function expectedRows(traits: Record<string, unknown>): Pick<MirrorRow, "key" | "type" | "value_text">[] {
  return Object.entries(traits)
    .filter(([, v]) => v !== null)
    .map(([key, v]) => ({
      key,
      type:
        typeof v === "string"
          ? "text"
          : typeof v === "number"
            ? Number.isInteger(v)
              ? "integer"
              : "real"
            : typeof v === "boolean"
              ? String(v)
              : Array.isArray(v)
                ? "array"
                : "object",
      value_text: typeof v === "string" ? v : null,
    }))
    .sort((a, b) => (a.key < b.key ? -1 : 1));
}

async function expectMirrorToMatchTraits(profileId: string) {
  const { traits } = await profileRow(profileId);
  expect((await mirrorOf(profileId)).map(({ key, type, value_text }) => ({ key, type, value_text }))).toEqual(
    expectedRows(traits),
  );
}

describe("profile_traits", () => {
  it("holds an identify's scalar traits with numbers and ISO dates in value_num", async () => {
    const site = await makeSiteRow();
    const anon = uid("a");
    await run(site, [
      identify({
        anonymousId: anon,
        userId: uid("u"),
        traits: { plan: "pro", seats: 12, ratio: 0.5, vip: true, signed_up_at: "2025-05-01T10:00:00Z", tags: ["x"] },
      }),
    ]);
    const id = (await profileOf("anonymous_id", anon)) as string;
    const rows = new Map((await mirrorOf(id)).map((r) => [r.key, r]));

    expect(rows.get("plan")).toMatchObject({ type: "text", value_text: "pro", value_num: null });
    expect(rows.get("seats")).toMatchObject({ type: "integer", value_num: 12 });
    expect(rows.get("ratio")).toMatchObject({ type: "real", value_num: 0.5 });
    expect(rows.get("vip")).toMatchObject({ type: "true", value_text: null, value_num: null });
    expect(rows.get("signed_up_at")?.value_num).toBe(Date.parse("2025-05-01T10:00:00Z"));
    expect(rows.get("tags")).toMatchObject({ type: "array", value_text: null });
    await expectMirrorToMatchTraits(id);
  });

  it("follows a changed trait and drops a trait set to null", async () => {
    const site = await makeSiteRow();
    const anon = uid("a");
    const userId = uid("u");
    await run(site, [identify({ anonymousId: anon, userId, traits: { plan: "free", city: "Paris" } })]);
    await run(site, [identify({ anonymousId: anon, userId, traits: { plan: "pro", city: null } })], T0 + 120_000);
    const id = (await profileOf("anonymous_id", anon)) as string;

    const rows = await mirrorOf(id);
    expect(rows.find((r) => r.key === "plan")?.value_text).toBe("pro");
    expect(rows.some((r) => r.key === "city")).toBe(false);
    await expectMirrorToMatchTraits(id);
  });

  it("moves to the winner when the pipeline merges two profiles", async () => {
    const site = await makeSiteRow();
    const [a1, a2] = [uid("a"), uid("a")];
    const userId = uid("u");
    await run(site, [identify({ anonymousId: a1, userId, traits: { plan: "pro" } })]);
    await run(site, [identify({ anonymousId: a2, traits: { city: "Berlin" } })], T0 + 120_000);
    const loser = (await profileOf("anonymous_id", a2)) as string;
    await run(site, [identify({ anonymousId: a2, userId })], T0 + 180_000);
    const winner = (await profileOf("anonymous_id", a2)) as string;

    expect(winner).not.toBe(loser);
    expect(await mirrorOf(loser)).toEqual([]);
    await expectMirrorToMatchTraits(winner);
  });

  it("comes back for a profile restored by unmerge and goes with an erasure", async () => {
    const site = await makeSiteRow();
    const [a1, a2] = [uid("a"), uid("a")];
    await run(site, [
      identify({ anonymousId: a1, traits: { plan: "pro" } }),
      identify({ anonymousId: a2, traits: { plan: "free", city: "Rome" } }),
    ]);
    const [p1, p2] = (await Promise.all([a1, a2].map((a) => profileOf("anonymous_id", a)))) as string[];
    const merged = await api("/api/profiles/merge", { body: { winnerId: p1, loserId: p2 } });
    expect(merged.status).toBe(200);
    expect(await mirrorOf(p2)).toEqual([]);

    const { mergeId } = (await merged.json()) as { mergeId: string };
    expect((await api(`/api/profiles/${p1}/unmerge`, { body: { mergeId } })).status).toBe(200);
    expect((await mirrorOf(p2)).find((r) => r.key === "city")?.value_text).toBe("Rome");
    await expectMirrorToMatchTraits(p2);
    await expectMirrorToMatchTraits(p1);

    expect((await api(`/api/profiles/${p1}`, { method: "DELETE" })).status).toBe(200);
    expect(await mirrorOf(p1)).toEqual([]);
  });

  it("is what the preview counts for a trait rule, through its index and without scanning profiles", async () => {
    const site = await makeSiteRow();
    const plan = uid("plan-");
    const anons = [uid("a"), uid("a"), uid("a")];
    await run(site, [
      identify({ anonymousId: anons[0], traits: { plan } }),
      identify({ anonymousId: anons[1], traits: { plan } }),
      identify({ anonymousId: anons[2], traits: { plan: `${plan}-other` } }),
      page({ anonymousId: uid("a") }),
    ]);
    const rule = { trait: "plan", op: "eq", value: plan } as const;

    const preview = await previewRule(env.DB, rule, T0);
    expect(preview.count).toBe(2);

    const stmt = prepare(env.DB, (p) => `EXPLAIN QUERY PLAN SELECT COUNT(*) AS n FROM (${compileSet(rule, p, T0)})`);
    const details = (await stmt.all<{ detail: string }>()).results.map((r) => r.detail);
    expect(details.some((d) => d.includes("profile_traits_text_idx"))).toBe(true);
    expect(details.some((d) => /\bprofiles\b/.test(d))).toBe(false);
  });

  it("counts a trait rule combined with an event condition from the profiles the trait selects", async () => {
    const site = await makeSiteRow();
    const plan = uid("plan-");
    const [buyer, browser] = [uid("a"), uid("a")];
    await run(site, [
      identify({ anonymousId: buyer, traits: { plan } }),
      identify({ anonymousId: browser, traits: { plan } }),
      page({ anonymousId: buyer, properties: { path: "/pricing", url: "https://shop.example/pricing" } }),
    ]);
    const rule: Condition = { all: [{ trait: "plan", op: "eq", value: plan }, { page: true }] };

    const preview = await previewRule(env.DB, rule, T0 + 120_000);
    expect(preview.count).toBe(1);
    expect(preview.sample.map((s) => s.id)).toEqual([await profileOf("anonymous_id", buyer)]);
  });
});
