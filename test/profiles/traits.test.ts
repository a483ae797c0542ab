import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import {
  identify,
  makeEvent,
  makeSiteRow,
  page,
  profileOf,
  profileRow,
  run,
  T0,
  uid,
  warningsAbout,
} from "../pipeline/factory";

const MIN = 60_000;

describe("traits by event time", () => {
  it("keeps the newer value when an older identify arrives later", async () => {
    const site = await makeSiteRow();
    const anon = uid("a");
    await run(site, [identify({ anonymousId: anon, traits: { plan: "pro", city: "Oslo" }, timestamp: T0 + 10 * MIN })]);
    await run(site, [identify({ anonymousId: anon, traits: { plan: "free", company: "Acme" }, timestamp: T0 })]);
    const profile = await profileRow((await profileOf("anonymous_id", anon)) as string);
    expect(profile.traits).toEqual({ plan: "pro", city: "Oslo", company: "Acme" });
  });

  it("applies a batch's identifies in event-time order whatever order they arrive in", async () => {
    const site = await makeSiteRow();
    const anon = uid("a");
    await run(site, [
      identify({ anonymousId: anon, traits: { plan: "enterprise" }, timestamp: T0 + 2 * MIN }),
      identify({ anonymousId: anon, traits: { plan: "trial" }, timestamp: T0 }),
    ]);
    const profile = await profileRow((await profileOf("anonymous_id", anon)) as string);
    expect(profile.traits.plan).toBe("enterprise");
  });

  it("removes a trait set to null, and an older event can't bring it back", async () => {
    const site = await makeSiteRow();
    const anon = uid("a");
    await run(site, [identify({ anonymousId: anon, traits: { coupon: "X1", plan: "pro" }, timestamp: T0 })]);
    await run(site, [identify({ anonymousId: anon, traits: { coupon: null }, timestamp: T0 + MIN })]);
    await run(site, [identify({ anonymousId: anon, traits: { coupon: "OLD" }, timestamp: T0 + 30_000 })]);
    const profile = await profileRow((await profileOf("anonymous_id", anon)) as string);
    expect(profile.traits).toEqual({ plan: "pro" });
  });

  it("replaces a nested trait as a whole value", async () => {
    const site = await makeSiteRow();
    const anon = uid("a");
    await run(site, [
      identify({ anonymousId: anon, traits: { address: { city: "Oslo", zip: "0150" } }, timestamp: T0 }),
    ]);
    await run(site, [identify({ anonymousId: anon, traits: { address: { city: "Bergen" } }, timestamp: T0 + MIN })]);
    const profile = await profileRow((await profileOf("anonymous_id", anon)) as string);
    expect(profile.traits.address).toEqual({ city: "Bergen" });
  });

  it("merges traits by event time when two profiles merge", async () => {
    const site = await makeSiteRow();
    const [a, b, user] = [uid("a"), uid("a"), uid("u")];
    await run(site, [identify({ anonymousId: a, userId: user, traits: { plan: "old", seat: 1 }, timestamp: T0 })]);
    await run(site, [identify({ anonymousId: b, traits: { plan: "new" }, timestamp: T0 + MIN })]);
    await run(site, [identify({ anonymousId: b, userId: user, timestamp: T0 + 2 * MIN })]);
    const profile = await profileRow((await profileOf("user_id", user)) as string);
    expect(profile.traits).toEqual({ plan: "new", seat: 1 });
  });

  it("denormalises email and name for listing", async () => {
    const site = await makeSiteRow();
    const anon = uid("a");
    await run(site, [
      identify({ anonymousId: anon, traits: { firstName: "Grace", lastName: "Hopper", email: "G@Navy.MIL" } }),
    ]);
    const profile = await profileRow((await profileOf("anonymous_id", anon)) as string);
    expect(profile).toMatchObject({ name: "Grace Hopper", email: "g@navy.mil", identified: 1 });
  });

  it("keeps the company from group calls with its traits", async () => {
    const site = await makeSiteRow();
    const [anon, company] = [uid("a"), uid("grp")];
    await run(site, [
      makeEvent({
        type: "group",
        event: null,
        anonymousId: anon,
        groupId: company,
        traits: { name: "Acme", size: 10 },
      }),
    ]);
    await run(site, [
      makeEvent({
        type: "group",
        event: null,
        anonymousId: anon,
        groupId: company,
        traits: { size: 12 },
        timestamp: T0 + 1,
      }),
    ]);
    const profile = await profileRow((await profileOf("anonymous_id", anon)) as string);
    expect(profile.company_id).toBe(company);
    const group = await env.DB.prepare("SELECT traits FROM groups WHERE id = ?")
      .bind(company)
      .first<{ traits: string }>();
    expect(JSON.parse(group?.traits ?? "{}")).toEqual({ name: "Acme", size: 12 });
  });
});

describe("computed traits", () => {
  it("counts page views, sessions, events, revenue and orders incrementally", async () => {
    const site = await makeSiteRow();
    const anon = uid("a");
    await run(site, [
      page({ anonymousId: anon, timestamp: T0 }),
      page({ anonymousId: anon, timestamp: T0 + 5 * MIN }),
      // 45 minutes of inactivity: a new session.
      page({ anonymousId: anon, timestamp: T0 + 50 * MIN }),
      makeEvent({
        anonymousId: anon,
        event: "Order Completed",
        properties: { total: "19.90" },
        timestamp: T0 + 51 * MIN,
      }),
      makeEvent({ anonymousId: anon, event: "Upgraded", properties: { revenue: 10.1 }, timestamp: T0 + 52 * MIN }),
    ]);
    await run(site, [
      makeEvent({ anonymousId: anon, event: "order_completed", properties: { revenue: 5 }, timestamp: T0 + 53 * MIN }),
    ]);
    const { computed } = await profileRow((await profileOf("anonymous_id", anon)) as string);
    expect(computed).toMatchObject({
      page_views: 3,
      sessions: 2,
      orders: 2,
      total_revenue: 35,
      event_counts: { "Order Completed": 1, Upgraded: 1, order_completed: 1 },
      first_seen: T0,
      last_seen: T0 + 53 * MIN,
    });
  });

  it("counts a new session id as a new session", async () => {
    const site = await makeSiteRow();
    const anon = uid("a");
    await run(site, [
      page({ anonymousId: anon, context: { sessionId: "s1" }, timestamp: T0 }),
      page({ anonymousId: anon, context: { sessionId: "s1" }, timestamp: T0 + MIN }),
      page({ anonymousId: anon, context: { sessionId: "s2" }, timestamp: T0 + 2 * MIN }),
    ]);
    const { computed } = await profileRow((await profileOf("anonymous_id", anon)) as string);
    expect(computed.sessions).toBe(2);
  });

  it("keeps first and last touch, last page, devices and country", async () => {
    const site = await makeSiteRow();
    const anon = uid("a");
    await run(site, [
      page({
        anonymousId: anon,
        timestamp: T0,
        context: { campaign: { source: "newsletter", medium: "email", name: "spring" }, geo: { country: "NO" } },
        properties: { url: "https://shop.example/a", path: "/a", title: "A" },
      }),
      page({
        anonymousId: anon,
        timestamp: T0 + MIN,
        context: { device: { browser: "Firefox", os: "Linux", deviceType: "desktop" }, geo: { country: "SE" } },
        properties: { url: "https://shop.example/b", path: "/b", title: "B", referrer: "https://www.google.com/" },
      }),
    ]);
    const { computed } = await profileRow((await profileOf("anonymous_id", anon)) as string);
    expect(computed).toMatchObject({
      first_touch: { source: "newsletter", medium: "email", campaign: "spring", at: T0 },
      last_touch: { source: "www.google.com", medium: "referral", referrer: "https://www.google.com/", at: T0 + MIN },
      last_page: { url: "https://shop.example/b", path: "/b", title: "B" },
      browsers: ["Firefox"],
      devices: ["Linux desktop"],
      country: "SE",
    });
  });

  it("combines computed traits when profiles merge", async () => {
    const site = await makeSiteRow();
    const [a, b, user] = [uid("a"), uid("a"), uid("u")];
    await run(site, [
      page({ anonymousId: a, timestamp: T0 + 10 * MIN }),
      makeEvent({ anonymousId: a, event: "Order Completed", properties: { revenue: 30 }, timestamp: T0 + 11 * MIN }),
    ]);
    await run(site, [
      page({ anonymousId: b, timestamp: T0 }),
      page({ anonymousId: b, timestamp: T0 + 60 * MIN }),
      makeEvent({ anonymousId: b, event: "Order Completed", properties: { revenue: 12.5 }, timestamp: T0 + 61 * MIN }),
    ]);
    await run(site, [identify({ anonymousId: a, userId: user, timestamp: T0 + 62 * MIN })]);
    await run(site, [identify({ anonymousId: b, userId: user, timestamp: T0 + 63 * MIN })]);
    const { computed } = await profileRow((await profileOf("user_id", user)) as string);
    expect(computed).toMatchObject({
      page_views: 3,
      orders: 2,
      total_revenue: 42.5,
      event_counts: { "Order Completed": 2 },
      first_seen: T0,
      last_seen: T0 + 63 * MIN,
    });
  });
});

describe("identity verification", () => {
  it("with verification off, an identify without a userHash links the browser to the user's profile", async () => {
    const site = await makeSiteRow({ verification: false });
    const [device, browser, user] = [uid("a"), uid("a"), uid("u")];
    await run(site, [identify({ anonymousId: device, userId: user, verified: true })]);
    await run(site, [identify({ anonymousId: browser, userId: user, timestamp: T0 + 1 })]);
    expect(await profileOf("anonymous_id", browser)).toBe(await profileOf("user_id", user));
  });

  it("with verification on, an unverified identify can't attach a browser to an existing user or change them", async () => {
    const site = await makeSiteRow({ verification: true });
    const [device, attacker, user] = [uid("a"), uid("a"), uid("u")];
    await run(site, [identify({ anonymousId: device, userId: user, traits: { name: "Victim" }, verified: true })]);
    const victim = await profileOf("user_id", user);
    await run(site, [
      identify({
        anonymousId: attacker,
        userId: user,
        traits: { name: "Mallory" },
        timestamp: T0 + 1,
        verified: false,
      }),
    ]);
    const attackerProfile = await profileOf("anonymous_id", attacker);
    expect(attackerProfile).not.toBeNull();
    expect(attackerProfile).not.toBe(victim);
    expect((await profileRow(victim as string)).name).toBe("Victim");
    expect(await warningsAbout(user)).toEqual([
      expect.objectContaining({ profile_id: attackerProfile, reason: "unverified" }),
    ]);
    const stored = await env.DB.prepare("SELECT profile_id FROM events WHERE anonymous_id = ?")
      .bind(attacker)
      .first<{ profile_id: string }>();
    expect(stored?.profile_id).toBe(attackerProfile);
  });

  it("with verification on, a verified identify links as usual", async () => {
    const site = await makeSiteRow({ verification: true });
    const [device, browser, user] = [uid("a"), uid("a"), uid("u")];
    await run(site, [identify({ anonymousId: device, userId: user, verified: true })]);
    await run(site, [identify({ anonymousId: browser, userId: user, timestamp: T0 + 1, verified: true })]);
    expect(await profileOf("anonymous_id", browser)).toBe(await profileOf("user_id", user));
  });
});
