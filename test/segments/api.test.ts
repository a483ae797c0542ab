import { describe, expect, it } from "vitest";
import { segmentSchema } from "../../worker/segments";
import { api } from "../helpers/api";
import { seedProfiles, uniqueKey } from "./factories";

const create = (body: Record<string, unknown>) => api("/api/segments", { body: { name: "Segment", ...body } });

describe("segments API", () => {
  it("creates a segment, back-fills existing profiles and reports its members", async () => {
    const city = uniqueKey("city");
    const [lyon] = await seedProfiles([
      { traits: { city }, email: "ann@shop.example" },
      { traits: { city: "Elsewhere" } },
    ]);
    const key = uniqueKey("locals");
    const res = await create({ key, rule: { trait: "city", op: "eq", value: city } });
    expect(res.status).toBe(201);
    const body = (await res.json()) as { memberCount: number; sync: { entered: number } };
    expect(segmentSchema.parse(body).memberCount).toBe(1);
    expect(body.sync.entered).toBe(1);
    const members = (await (await api(`/api/segments/${key}/members`)).json()) as { items: { profileId: string }[] };
    expect(members.items.map((m) => m.profileId)).toEqual([lyon]);
    const history = (await (await api(`/api/segments/${key}/history`)).json()) as { items: { change: string }[] };
    expect(history.items.map((h) => h.change)).toEqual(["entered"]);
  });

  it("answers 409 for an existing key", async () => {
    const key = uniqueKey("dup");
    expect((await create({ key, rule: { trait: "a", op: "exists" } })).status).toBe(201);
    expect((await create({ key, rule: { trait: "a", op: "exists" } })).status).toBe(409);
  });

  it("rejects invalid keys and rules with a 400 naming the problem", async () => {
    expect((await create({ key: "Bad Key", rule: { trait: "a", op: "exists" } })).status).toBe(400);
    const res = await create({ key: uniqueKey("bad"), rule: { all: [{ trait: "age", op: "gt", value: "ten" }] } });
    expect(res.status).toBe(400);
    const err = (await res.json()) as { error: { details: { path: string }[] } };
    expect(err.error.details[0].path).toBe("rule.all.0.value");
  });

  it("rejects references to unknown segments and cycles", async () => {
    const a = uniqueKey("a");
    const b = uniqueKey("b");
    expect((await create({ key: a, rule: { segment: "does-not-exist" } })).status).toBe(400);
    expect((await create({ key: a, rule: { trait: "x", op: "exists" } })).status).toBe(201);
    expect((await create({ key: b, rule: { segment: a } })).status).toBe(201);
    const cyclic = await api(`/api/segments/${a}`, { method: "PUT", body: { name: "A", rule: { segment: b } } });
    expect(cyclic.status).toBe(400);
    expect(((await cyclic.json()) as { error: { message: string } }).error.message).toContain("Circular");
    const self = await api(`/api/segments/${a}`, { method: "PUT", body: { name: "A", rule: { segment: a } } });
    expect(self.status).toBe(400);
  });

  it("refuses to delete a segment another segment uses", async () => {
    const a = uniqueKey("base");
    const b = uniqueKey("derived");
    await create({ key: a, rule: { trait: "x", op: "exists" } });
    await create({ key: b, rule: { segment: a } });
    expect((await api(`/api/segments/${a}`, { method: "DELETE" })).status).toBe(409);
    expect((await api(`/api/segments/${b}`, { method: "DELETE" })).status).toBe(204);
    expect((await api(`/api/segments/${b}`)).status).toBe(404);
  });

  it("re-evaluates every profile when the rule changes, with exits in the history", async () => {
    const tag = uniqueKey("t");
    const [one] = await seedProfiles([{ traits: { tier: tag, n: 1 } }]);
    const key = uniqueKey("tier");
    await create({ key, rule: { trait: "tier", op: "eq", value: tag } });
    const res = await api(`/api/segments/${key}`, {
      method: "PUT",
      body: {
        name: "Tier",
        rule: {
          all: [
            { trait: "tier", op: "eq", value: tag },
            { trait: "n", op: "gt", value: 1 },
          ],
        },
      },
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { version: number; memberCount: number; sync: { exited: number } };
    expect(body).toMatchObject({ version: 2, memberCount: 0, sync: { exited: 1 } });
    const history = (await (await api(`/api/segments/${key}/history`)).json()) as {
      items: { profileId: string; change: string }[];
    };
    expect(history.items[0]).toMatchObject({ profileId: one, change: "exited" });
  });

  it("previews a rule's count and sample without saving it", async () => {
    const mark = uniqueKey("preview");
    await seedProfiles([
      { traits: { mark }, email: "a@x.example", name: "A" },
      { traits: { mark }, email: "b@x.example", name: "B" },
      { traits: { mark: "other" } },
    ]);
    const res = await api("/api/segments/preview", { body: { rule: { trait: "mark", op: "eq", value: mark } } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { count: number; sample: { email: string }[] };
    expect(body.count).toBe(2);
    expect(body.sample.map((s) => s.email).sort()).toEqual(["a@x.example", "b@x.example"]);
  });

  it("lists segments with their member counts", async () => {
    const mark = uniqueKey("m");
    await seedProfiles([{ traits: { mark } }, { traits: { mark } }]);
    const key = uniqueKey("listed");
    await create({ key, rule: { trait: "mark", op: "eq", value: mark } });
    const list = (await (await api("/api/segments")).json()) as { items: { key: string; memberCount: number }[] };
    expect(list.items.find((s) => s.key === key)?.memberCount).toBe(2);
  });

  it("pages members with a cursor", async () => {
    const mark = uniqueKey("page");
    const ids = (await seedProfiles([{ traits: { mark } }, { traits: { mark } }, { traits: { mark } }])).sort();
    const key = uniqueKey("paged");
    await create({ key, rule: { trait: "mark", op: "eq", value: mark } });
    const first = (await (await api(`/api/segments/${key}/members?limit=2`)).json()) as {
      items: { profileId: string }[];
      nextCursor: string;
    };
    const second = (await (await api(`/api/segments/${key}/members?limit=2&cursor=${first.nextCursor}`)).json()) as {
      items: { profileId: string }[];
      nextCursor: string | null;
    };
    expect([...first.items, ...second.items].map((m) => m.profileId)).toEqual(ids);
    expect(second.nextCursor).toBeNull();
  });

  it("exports members as formula-safe CSV", async () => {
    const mark = uniqueKey("csv");
    const [id] = await seedProfiles([
      { traits: { mark }, email: "x@y.example", name: '=HYPERLINK("http://evil","click")' },
    ]);
    const key = uniqueKey("export");
    await create({ key, rule: { trait: "mark", op: "eq", value: mark } });
    const res = await api(`/api/segments/${key}/export.csv`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/csv");
    const csv = await res.text();
    expect(csv.split("\r\n")[0]).toBe("profile_id,email,name,entered_at");
    expect(csv).toContain(`${id},x@y.example,"'=HYPERLINK(""http://evil"",""click"")",`);
  });

  it("evaluates a segment on demand", async () => {
    const key = uniqueKey("ondemand");
    await create({ key, rule: { trait: "never-set-anywhere", op: "exists" } });
    const res = await api(`/api/segments/${key}/evaluate`, { method: "POST" });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ entered: 0, exited: 0 });
  });

  it("answers 404 for an unknown segment", async () => {
    expect((await api("/api/segments/unknown-segment")).status).toBe(404);
    expect((await api("/api/segments/unknown-segment/members")).status).toBe(404);
  });
});
