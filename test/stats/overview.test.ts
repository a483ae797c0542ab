import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { saveSegment } from "../../worker/segments/service";
import { overviewSchema, statsSchema } from "../../worker/stats";
import { api, asSession, BASE, sessionFor } from "../helpers/api";
import { identify, makeEvent, makeSiteRow, page, run, uid } from "../pipeline/factory";

const DAY = 86_400_000;
const isoDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);

async function overview(query = "") {
  const res = await api(`/api/stats/overview${query}`);
  const text = await res.text();
  expect(res.status, text).toBe(200);
  return overviewSchema.parse(JSON.parse(text));
}

const countOn = (o: { events: { perDay: { day: string; count: number }[] } }, day: string) =>
  o.events.perDay.find((d) => d.day === day)?.count;

describe("GET /api/stats/overview", () => {
  it("counts events per UTC day of event time over the window, one entry per day", async () => {
    const now = Date.now();
    const site = await makeSiteRow();
    const anon = uid("a");
    const before = await overview();
    await run(
      site,
      [
        page({ anonymousId: anon, timestamp: now - 3 * DAY }),
        makeEvent({ anonymousId: anon, timestamp: now - 3 * DAY + 1 }),
        makeEvent({ anonymousId: anon, timestamp: now - 17 * DAY }),
      ],
      now,
    );
    const after = await overview();

    expect(after.events.perDay).toHaveLength(30);
    expect(after.events.perDay.at(-1)?.day).toBe(isoDay(now));
    expect(after.events.perDay[0].day).toBe(isoDay(now - 29 * DAY));
    expect((countOn(after, isoDay(now - 3 * DAY)) ?? 0) - (countOn(before, isoDay(now - 3 * DAY)) ?? 0)).toBe(2);
    expect((countOn(after, isoDay(now - 17 * DAY)) ?? 0) - (countOn(before, isoDay(now - 17 * DAY)) ?? 0)).toBe(1);
    expect(after.events.total - before.events.total).toBe(3);
    expect((await overview("?days=7")).events.perDay).toHaveLength(7);
  });

  it("ranks track events by name within the window, leaving out older ones", async () => {
    const now = Date.now();
    const site = await makeSiteRow();
    const anon = uid("a");
    const [often, once, old] = [uid("Often "), uid("Once "), uid("Old ")];
    await run(
      site,
      [
        ...[1, 2, 3].map((i) => makeEvent({ anonymousId: anon, event: often, timestamp: now - i * DAY })),
        makeEvent({ anonymousId: anon, event: once, timestamp: now - DAY }),
        makeEvent({ anonymousId: anon, event: old, timestamp: now - 40 * DAY }),
      ],
      now,
    );
    const { topEvents } = await overview("?top=50");
    const names = topEvents.map((e) => e.event);
    expect(topEvents).toContainEqual({ event: often, count: 3 });
    expect(topEvents).toContainEqual({ event: once, count: 1 });
    expect(names.indexOf(often)).toBeLessThan(names.indexOf(once));
    expect(names).not.toContain(old);
    expect((await overview("?days=60&top=50")).topEvents).toContainEqual({ event: old, count: 1 });
  });

  it("counts a redelivered batch once", async () => {
    const now = Date.now();
    const site = await makeSiteRow();
    const name = uid("Redelivered ");
    const batch = [makeEvent({ anonymousId: uid("a"), event: name, timestamp: now - DAY })];
    await run(site, batch, now);
    await run(site, batch, now + 1000);
    expect((await overview("?top=50")).topEvents).toContainEqual({ event: name, count: 1 });
  });

  it("reports the identified share and every segment's member count", async () => {
    const site = await makeSiteRow();
    const plan = uid("plan-");
    await run(site, [
      identify({ userId: uid("u"), traits: { plan } }),
      identify({ anonymousId: uid("a"), traits: { plan } }),
    ]);
    const key = uid("seg-");
    await saveSegment(
      env.DB,
      { key, name: "On the plan", rule: { trait: "plan", op: "eq", value: plan } },
      Date.now(),
      "create",
    );

    const o = await overview();
    expect(o.segments).toContainEqual({ key, name: "On the plan", members: 2 });
    expect(o.identifiedProfiles).toBeGreaterThanOrEqual(1);
    expect(o.identifiedShare).toBeCloseTo(o.identifiedProfiles / o.profiles, 4);
  });

  it("rejects a window or ranking outside its bounds", async () => {
    for (const query of ["days=0", "days=366", "days=x", "top=0", "top=51"]) {
      expect((await api(`/api/stats/overview?${query}`)).status, query).toBe(400);
    }
  });

  it("is readable by a viewer", async () => {
    const viewer = await sessionFor("viewer");
    expect((await asSession(viewer, "/api/stats/overview")).status).toBe(200);
  });
});

describe("GET /api/stats", () => {
  it("keeps its shape: events, profiles, identified profiles and GPC-dropped events", async () => {
    const res = await api("/api/stats");
    const body = (await res.json()) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(["events", "gpcDropped", "identifiedProfiles", "profiles"]);
    statsSchema.parse(body);
  });

  it("documents both stats routes in the OpenAPI document", async () => {
    const doc = (await (await SELF.fetch(`${BASE}/api/openapi.json`)).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    expect(doc.paths["/api/stats"]).toHaveProperty("get");
    expect(doc.paths["/api/stats/overview"]).toHaveProperty("get");
  });
});
