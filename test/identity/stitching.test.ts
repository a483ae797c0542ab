import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import {
  identify,
  identitiesOf,
  makeSiteRow,
  page,
  profileOf,
  profileRow,
  run,
  T0,
  uid,
  warningsAbout,
} from "../pipeline/factory";

describe("identity stitching", () => {
  it("attaches a user id and email to the anonymous visitor's profile when they sign in", async () => {
    const site = await makeSiteRow();
    const anon = uid("a");
    const user = uid("u");
    await run(site, [page({ anonymousId: anon })]);
    const before = await profileOf("anonymous_id", anon);
    await run(site, [
      identify({
        anonymousId: anon,
        userId: user,
        traits: { email: ` ${user}@Example.COM `, name: "Ada" },
        timestamp: T0 + 1,
      }),
    ]);
    expect(await profileOf("user_id", user)).toBe(before);
    expect(await identitiesOf(before as string)).toEqual([
      `anonymous_id:${anon}`,
      `email:${user.toLowerCase()}@example.com`,
      `user_id:${user}`,
    ]);
    const profile = await profileRow(before as string);
    expect(profile.identified).toBe(1);
    expect(profile.email).toBe(`${user.toLowerCase()}@example.com`);
    expect(profile.name).toBe("Ada");
  });

  it("merges two devices into one profile when the same user signs in on both, the older surviving", async () => {
    const site = await makeSiteRow();
    const [phone, laptop, user] = [uid("a"), uid("a"), uid("u")];
    await run(site, [page({ anonymousId: phone, timestamp: T0 })], T0);
    await run(site, [identify({ anonymousId: phone, userId: user, timestamp: T0 + 10 })], T0 + 10);
    const first = (await profileOf("user_id", user)) as string;
    await run(site, [page({ anonymousId: laptop, timestamp: T0 + 20 })], T0 + 20);
    const second = (await profileOf("anonymous_id", laptop)) as string;
    expect(second).not.toBe(first);

    const result = await run(site, [identify({ anonymousId: laptop, userId: user, timestamp: T0 + 30 })], T0 + 30);
    expect(result.merges).toBe(1);
    expect(await profileOf("anonymous_id", laptop)).toBe(first);
    expect((await profileRow(second)).merged_into).toBe(first);
    expect((await profileRow(first)).computed.page_views).toBe(2);
  });

  it("keeps a second person on a shared browser in their own profile and records a warning", async () => {
    const site = await makeSiteRow();
    const [browser, alice, bob] = [uid("a"), uid("u"), uid("u")];
    await run(site, [identify({ anonymousId: browser, userId: alice, timestamp: T0 })]);
    await run(site, [identify({ anonymousId: browser, userId: bob, timestamp: T0 + 5 })]);
    const aliceProfile = await profileOf("user_id", alice);
    const bobProfile = await profileOf("user_id", bob);
    expect(bobProfile).not.toBeNull();
    expect(bobProfile).not.toBe(aliceProfile);
    // The browser stays with the profile it already belonged to.
    expect(await profileOf("anonymous_id", browser)).toBe(aliceProfile);
    const warnings = await warningsAbout(browser);
    expect(warnings).toEqual([expect.objectContaining({ profile_id: bobProfile, reason: "limit:user_id" })]);
  });

  it("never links blocklisted values, default or per site", async () => {
    const marker = uid("junk");
    const site = await makeSiteRow({ policy: { blocklist: [marker] } });
    const [a, b] = [uid("a"), uid("a")];
    await run(site, [identify({ anonymousId: a, userId: marker })]);
    await run(site, [identify({ anonymousId: b, userId: marker.toUpperCase(), traits: { email: "null" } })]);
    expect(await profileOf("anonymous_id", a)).not.toBe(await profileOf("anonymous_id", b));
    expect(await profileOf("user_id", marker)).toBeNull();
    expect((await warningsAbout(marker)).map((w) => w.reason)).toEqual(["blocklisted"]);
  });

  it("resolves every old id to the survivor after a merge chain (A+B, then B+C)", async () => {
    const site = await makeSiteRow();
    const [a, b, c, user, email] = [uid("a"), uid("a"), uid("a"), uid("u"), `${uid("e")}@x.io`];
    await run(site, [page({ anonymousId: a, timestamp: T0 })], T0);
    await run(site, [page({ anonymousId: b, timestamp: T0 + 1 })], T0 + 1);
    await run(site, [page({ anonymousId: c, timestamp: T0 + 2 })], T0 + 2);
    const [pa, pb, pc] = await Promise.all([a, b, c].map((x) => profileOf("anonymous_id", x)));
    // B+C first: B (older) absorbs C.
    await run(site, [identify({ anonymousId: c, traits: { email }, timestamp: T0 + 3 })], T0 + 3);
    await run(site, [identify({ anonymousId: b, traits: { email }, timestamp: T0 + 4 })], T0 + 4);
    expect((await profileRow(pc as string)).merged_into).toBe(pb);
    // Then A+B: A absorbs B, and C (merged into B earlier) must now resolve to A.
    await run(site, [identify({ anonymousId: a, userId: user, timestamp: T0 + 5 })], T0 + 5);
    await run(site, [identify({ anonymousId: b, userId: user, timestamp: T0 + 6 })], T0 + 6);
    expect((await profileRow(pb as string)).merged_into).toBe(pa);
    expect((await profileRow(pc as string)).merged_into).toBe(pa);
    expect(await identitiesOf(pa as string)).toHaveLength(5);
    expect((await profileRow(pa as string)).merge_count).toBe(2);
  });

  it("links an identifier declared as a custom type through context.externalIds", async () => {
    const site = await makeSiteRow({ policy: { types: { crm_id: { limit: 1, priority: 2 } } } });
    const [a, b, crm] = [uid("a"), uid("a"), uid("crm")];
    await run(site, [page({ anonymousId: a, context: { externalIds: [{ type: "crm_id", id: crm }] } })]);
    await run(site, [identify({ anonymousId: b, traits: { crm_id: crm }, timestamp: T0 + 1 })]);
    expect(await profileOf("crm_id", crm)).toBe(await profileOf("anonymous_id", a));
    expect(await profileOf("anonymous_id", b)).toBe(await profileOf("anonymous_id", a));
  });

  it("normalises phone numbers to E.164 so differently written numbers link", async () => {
    const site = await makeSiteRow();
    const [a, b] = [uid("a"), uid("a")];
    const digits = `${Math.floor(1e8 + Math.random() * 9e8)}`;
    await run(site, [
      identify({ anonymousId: a, traits: { phone: `+44 (0${digits.slice(0, 3)}) ${digits.slice(3)}` } }),
    ]);
    await run(site, [identify({ anonymousId: b, traits: { phone: `0044-0${digits}` }, timestamp: T0 + 1 })]);
    expect(await profileOf("phone", `+440${digits}`)).toBe(await profileOf("anonymous_id", a));
    expect(await profileOf("anonymous_id", b)).toBe(await profileOf("anonymous_id", a));
  });

  it("starts a new profile for a sixth email instead of growing one past its limit of five", async () => {
    const site = await makeSiteRow();
    const anon = uid("a");
    const emails = Array.from({ length: 6 }, (_, i) => `${uid(`e${i}`)}@x.io`);
    await run(
      site,
      emails.map((email, i) => identify({ anonymousId: anon, traits: { email }, timestamp: T0 + i })),
    );
    const profile = (await profileOf("anonymous_id", anon)) as string;
    expect((await identitiesOf(profile)).filter((i) => i.startsWith("email:"))).toHaveLength(5);
    // The email outranks the anonymous id, so the anonymous id's link is the one refused.
    const sixth = await profileOf("email", emails[5]);
    expect(sixth).not.toBeNull();
    expect(sixth).not.toBe(profile);
    expect(await warningsAbout(anon)).toEqual([expect.objectContaining({ profile_id: sixth, reason: "limit:email" })]);
  });

  it("links a user id to an earlier user id only through the policy (alias of two user ids is refused)", async () => {
    const site = await makeSiteRow();
    const [anon, oldUser, newUser] = [uid("a"), uid("u"), uid("u")];
    await run(site, [identify({ anonymousId: anon, userId: oldUser })]);
    await run(site, [
      { ...identify({ userId: newUser, timestamp: T0 + 1 }), type: "alias", previousId: oldUser, traits: {} },
    ]);
    expect(await profileOf("user_id", newUser)).not.toBe(await profileOf("user_id", oldUser));
    expect((await warningsAbout(oldUser)).map((w) => w.reason)).toEqual(["limit:user_id"]);
  });

  it("aliases an anonymous id to a user id", async () => {
    const site = await makeSiteRow();
    const [anon, user] = [uid("a"), uid("u")];
    await run(site, [page({ anonymousId: anon })]);
    await run(site, [{ ...identify({ userId: user, timestamp: T0 + 1 }), type: "alias", previousId: anon }]);
    expect(await profileOf("user_id", user)).toBe(await profileOf("anonymous_id", anon));
  });

  it("stores a batch's events on one profile when the batch itself links them", async () => {
    const site = await makeSiteRow();
    const [a, user] = [uid("a"), uid("u")];
    const result = await run(site, [
      page({ anonymousId: a, timestamp: T0 }),
      identify({ anonymousId: a, userId: user, timestamp: T0 + 1 }),
      page({ userId: user, timestamp: T0 + 2 }),
    ]);
    expect(result.stored).toBe(3);
    const profile = (await profileOf("user_id", user)) as string;
    const { results } = await env.DB.prepare(
      "SELECT DISTINCT profile_id FROM events WHERE anonymous_id = ? OR user_id = ?",
    )
      .bind(a, user)
      .all<{ profile_id: string }>();
    expect(results.map((r) => r.profile_id)).toEqual([profile]);
  });
});
