import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { profileSchema } from "../../worker/profiles/read";
import { api, asSession, BASE, sessionFor } from "../helpers/api";
import { identify, makeSiteRow, profileOf, run, uid } from "../pipeline/factory";

interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

/** Two contacts the stitcher kept apart: one signed in, one from a form. */
async function twoContacts() {
  const site = await makeSiteRow();
  const [user, anon] = [uid("u"), uid("a")];
  const email = `${uid("m")}@example.com`;
  await run(site, [
    identify({ userId: user, traits: { name: "Ada" } }),
    identify({ anonymousId: anon, traits: { email } }),
  ]);
  return {
    site,
    winner: (await profileOf("user_id", user)) as string,
    loser: (await profileOf("anonymous_id", anon)) as string,
    email,
  };
}

const merge = (body: unknown) => api("/api/profiles/merge", { body });

describe("POST /api/profiles/merge", () => {
  it("merges two contacts and answers with the survivor's 360° view", async () => {
    const c = await twoContacts();
    const res = await merge({ winnerId: c.winner, loserId: c.loser });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { mergeId: string; profile: unknown };
    expect(body.mergeId).toMatch(/^mrg_/);
    const profile = profileSchema.parse(body.profile);
    expect(profile.id).toBe(c.winner);
    expect(profile.mergedFrom).toEqual([c.loser]);
    expect(profile.identities).toContainEqual({ type: "email", value: c.email });
    expect(profile.traits).toMatchObject({ name: "Ada", email: c.email });
    // The merged-away id keeps answering, with the survivor.
    expect(profileSchema.parse(await (await api(`/api/profiles/${c.loser}`)).json()).id).toBe(c.winner);
  });

  it("answers 409 with the reason when both contacts have a user id", async () => {
    const site = await makeSiteRow();
    const [a, b] = [uid("u"), uid("u")];
    await run(site, [identify({ userId: a }), identify({ userId: b })]);
    const res = await merge({ winnerId: await profileOf("user_id", a), loserId: await profileOf("user_id", b) });
    expect(res.status).toBe(409);
    const body = (await res.json()) as ErrorBody;
    expect(body.error.code).toBe("conflict");
    expect(body.error.details).toMatchObject({ reason: "limit:user_id" });
    expect(await profileOf("user_id", b)).not.toBe(await profileOf("user_id", a));
  });

  it("rejects a body that names one profile twice, lacks an id or carries unknown fields", async () => {
    for (const body of [
      { winnerId: "prf_a", loserId: "prf_a" },
      { winnerId: "prf_a" },
      { winnerId: "prf_a", loserId: "prf_b", force: true },
      { winnerId: "x".repeat(101), loserId: "prf_b" },
    ]) {
      const res = await merge(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(((await res.json()) as ErrorBody).error.code).toBe("validation_failed");
    }
  });

  it("answers 404 when either profile is unknown", async () => {
    const c = await twoContacts();
    expect((await merge({ winnerId: c.winner, loserId: "prf_nobody" })).status).toBe(404);
    expect((await merge({ winnerId: "prf_nobody", loserId: c.loser })).status).toBe(404);
  });

  it("lets a marketer merge, recording who did, but not a viewer", async () => {
    const c = await twoContacts();
    const viewer = await sessionFor("viewer");
    const denied = await asSession(viewer, "/api/profiles/merge", { body: { winnerId: c.winner, loserId: c.loser } });
    expect(denied.status).toBe(403);
    expect(await profileOf("email", c.email)).toBe(c.loser);

    const marketer = await sessionFor("marketer");
    const res = await asSession(marketer, "/api/profiles/merge", { body: { winnerId: c.winner, loserId: c.loser } });
    expect(res.status).toBe(200);
    const { mergeId } = (await res.json()) as { mergeId: string };
    const actor = await env.DB.prepare("SELECT actor FROM profile_merges WHERE id = ?").bind(mergeId).first("actor");
    expect(actor).toBe(marketer.user.id);
  });

  it("is documented in the OpenAPI document", async () => {
    const doc = (await (await SELF.fetch(`${BASE}/api/openapi.json`)).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    expect(doc.paths["/api/profiles/merge"]).toHaveProperty("post");
  });
});
