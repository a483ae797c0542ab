import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { mergeProfiles } from "../../worker/identity";
import { api } from "../helpers/api";
import { identify, makeSiteRow, profileOf, run, T0, uid } from "../pipeline/factory";

/** A webhook outbox row whose payload names `profileId`, shaped like the segment hook writes it. */
function delivery(profileId: string, status: "pending" | "delivered") {
  const id = uid("msg_");
  const payload = {
    type: "segment.entered",
    timestamp: new Date(T0).toISOString(),
    data: { segment: { key: "vip" }, profile: { id: profileId, traits: { email: "ada@example.com" } } },
  };
  return {
    id,
    statement: env.DB.prepare(
      `INSERT INTO deliveries (id, destination_id, type, payload, status, attempts, created_at, updated_at)
       VALUES (?, 'dst_test', 'segment.entered', ?, ?, 0, ?, ?)`,
    ).bind(id, JSON.stringify(payload), status, T0, T0),
  };
}

async function remaining(ids: string[]): Promise<string[]> {
  const { results } = await env.DB.prepare("SELECT id FROM deliveries WHERE id IN (SELECT value FROM json_each(?))")
    .bind(JSON.stringify(ids))
    .all<{ id: string }>();
  return results.map((r) => r.id).sort();
}

describe("DELETE /api/profiles/:id and webhook deliveries", () => {
  it("deletes the deliveries whose payload names the person or a profile merged into them", async () => {
    const site = await makeSiteRow();
    const [a, b, other] = [uid("a"), uid("a"), uid("a")];
    await run(site, [
      identify({ anonymousId: a, traits: { name: "Ada" } }),
      identify({ anonymousId: b, traits: { name: "Ada L." } }),
      identify({ anonymousId: other, traits: { name: "Bob" } }),
    ]);
    const [person, alias, bob] = await Promise.all([
      profileOf("anonymous_id", a),
      profileOf("anonymous_id", b),
      profileOf("anonymous_id", other),
    ]);
    await mergeProfiles(env.DB, person as string, alias as string, T0 + 60_000);
    const mine = [delivery(person as string, "pending"), delivery(alias as string, "delivered")];
    const theirs = delivery(bob as string, "pending");
    await env.DB.batch([...mine, theirs].map((d) => d.statement));

    const res = await api(`/api/profiles/${person}`, { method: "DELETE" });
    expect(res.status).toBe(200);
    expect(await remaining([...mine, theirs].map((d) => d.id))).toEqual([theirs.id]);
  });

  it("finds those deliveries through an index, not by scanning the delivery log", async () => {
    const { results } = await env.DB.prepare(
      `EXPLAIN QUERY PLAN DELETE FROM deliveries WHERE payload ->> '$.data.profile.id' IN (SELECT value FROM json_each(?1))`,
    )
      .bind(JSON.stringify(["prf_x"]))
      .all<{ detail: string }>();
    const plan = results.map((r) => r.detail).join("\n");
    expect(plan).toContain("deliveries_profile_idx");
    expect(plan).not.toMatch(/SCAN deliveries\b/);
  });
});
