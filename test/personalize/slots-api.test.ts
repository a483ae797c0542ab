import { SELF } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { slotSchema } from "../../worker/personalize/slots";
import { api, BASE } from "../helpers/api";
import { putSlot, seedSegment, unique } from "./seed";

const vip = unique("vip");
const trial = unique("trial");

beforeAll(async () => {
  await seedSegment(vip);
  await seedSegment(trial);
});

async function errorOf(res: Response) {
  return ((await res.json()) as { error: { code: string; details?: { path: string; message: string }[] } }).error;
}

describe("PUT /api/slots/:key", () => {
  it("creates a slot with 201 and returns it in the API shape", async () => {
    const key = unique("hero");
    const res = await api(`/api/slots/${key}`, {
      method: "PUT",
      body: {
        default: "<h1>Welcome</h1>",
        rules: [{ id: "vip", segment: vip, content: { headline: "Hi" } }],
        holdout: 10,
        schedule: { start: "2026-01-01T00:00:00Z", end: "2026-02-01T00:00:00.000Z" },
        goalEvent: "Order Completed",
      },
    });
    expect(res.status).toBe(201);
    const slot = slotSchema.parse(await res.json());
    expect(slot).toMatchObject({
      key,
      default: "<h1>Welcome</h1>",
      rules: [{ id: "vip", segment: vip, content: { headline: "Hi" } }],
      holdout: 10,
      schedule: { start: "2026-01-01T00:00:00.000Z", end: "2026-02-01T00:00:00.000Z" },
      goalEvent: "Order Completed",
    });
  });

  it("replaces an existing slot with 200 and keeps its creation time", async () => {
    const key = unique("hero");
    const first = slotSchema.parse(await putSlot(key, { default: "one" }));
    const res = await api(`/api/slots/${key}`, { method: "PUT", body: { default: "two" } });
    expect(res.status).toBe(200);
    const second = slotSchema.parse(await res.json());
    expect(second.default).toBe("two");
    expect(second.createdAt).toBe(first.createdAt);
  });

  it("gives rules without an id a generated id that GET returns unchanged", async () => {
    const key = unique("hero");
    const saved = await putSlot(key, {
      default: "d",
      rules: [
        { segment: vip, content: "a" },
        { segment: trial, content: "b" },
      ],
    });
    const ids = saved.rules.map((r) => r.id);
    expect(new Set(ids).size).toBe(2);
    for (const id of ids) expect(id).toMatch(/^rule_[A-Za-z0-9]{12}$/);
    const read = slotSchema.parse(await (await api(`/api/slots/${key}`)).json());
    expect(read.rules.map((r) => r.id)).toEqual(ids);
  });

  it("rejects keys outside ^[a-z0-9][a-z0-9_-]{0,63}$", async () => {
    for (const key of ["Hero", "-hero", "a".repeat(65), "he%20ro"]) {
      const res = await api(`/api/slots/${key}`, { method: "PUT", body: { default: "x" } });
      expect(res.status).toBe(400);
    }
  });

  it("rejects string content over 64 KB", async () => {
    const res = await api(`/api/slots/${unique("big")}`, {
      method: "PUT",
      body: { default: "x".repeat(64 * 1024 + 1) },
    });
    expect(res.status).toBe(400);
  });

  it("counts the 64 KB limit in UTF-8 bytes", async () => {
    const res = await api(`/api/slots/${unique("big")}`, { method: "PUT", body: { default: "é".repeat(40_000) } });
    expect(res.status).toBe(400);
  });

  it("rejects JSON content nested too deeply", async () => {
    let nested: Record<string, unknown> = { leaf: true };
    for (let i = 0; i < 40; i++) nested = { a: nested };
    const res = await api(`/api/slots/${unique("deep")}`, { method: "PUT", body: { default: nested } });
    expect(res.status).toBe(400);
  });

  it("rejects more than 50 rules", async () => {
    const rules = Array.from({ length: 51 }, () => ({ segment: vip, content: "x" }));
    const res = await api(`/api/slots/${unique("many")}`, { method: "PUT", body: { default: "x", rules } });
    expect(res.status).toBe(400);
  });

  it("rejects a holdout outside 0–100", async () => {
    for (const holdout of [-1, 100.5]) {
      const res = await api(`/api/slots/${unique("h")}`, { method: "PUT", body: { default: "x", holdout } });
      expect(res.status).toBe(400);
    }
  });

  it("rejects duplicate and reserved rule ids", async () => {
    const dup = await api(`/api/slots/${unique("r")}`, {
      method: "PUT",
      body: {
        default: "x",
        rules: [
          { id: "same", segment: vip, content: "a" },
          { id: "same", segment: trial, content: "b" },
        ],
      },
    });
    expect(dup.status).toBe(400);
    const reserved = await api(`/api/slots/${unique("r")}`, {
      method: "PUT",
      body: { default: "x", rules: [{ id: "holdout", segment: vip, content: "a" }] },
    });
    expect(reserved.status).toBe(400);
  });

  it("rejects a rule naming a segment that does not exist", async () => {
    const res = await api(`/api/slots/${unique("r")}`, {
      method: "PUT",
      body: { default: "x", rules: [{ segment: "no-such-segment", content: "a" }] },
    });
    expect(res.status).toBe(400);
    expect(JSON.stringify((await errorOf(res)).details)).toContain("no-such-segment");
  });

  it("rejects a schedule that ends before it starts", async () => {
    const res = await api(`/api/slots/${unique("s")}`, {
      method: "PUT",
      body: { default: "x", schedule: { start: "2026-02-01T00:00:00Z", end: "2026-01-01T00:00:00Z" } },
    });
    expect(res.status).toBe(400);
  });

  it("answers 413 for a body over 1 MB", async () => {
    const rules = Array.from({ length: 20 }, () => ({ segment: vip, content: "x".repeat(60_000) }));
    const res = await api(`/api/slots/${unique("huge")}`, { method: "PUT", body: { default: "x", rules } });
    expect(res.status).toBe(413);
  });

  it("answers 400 invalid_json for a malformed body", async () => {
    const res = await api(`/api/slots/${unique("j")}`, { method: "PUT", body: "{nope" });
    expect(res.status).toBe(400);
    expect((await errorOf(res)).code).toBe("invalid_json");
  });

  it("answers 401 without credentials", async () => {
    const res = await SELF.fetch(`${BASE}/api/slots/${unique("anon")}`, {
      method: "PUT",
      body: JSON.stringify({ default: "x" }),
    });
    expect(res.status).toBe(401);
  });
});

describe("GET and DELETE /api/slots", () => {
  it("lists slots in key order", async () => {
    const a = `a-${unique("list")}`;
    const b = `b-${unique("list")}`;
    await putSlot(b, { default: "b" });
    await putSlot(a, { default: "a" });
    const body = (await (await api("/api/slots")).json()) as { items: { key: string }[] };
    const keys = body.items.map((s) => s.key);
    expect(keys.indexOf(a)).toBeGreaterThanOrEqual(0);
    expect(keys.indexOf(a)).toBeLessThan(keys.indexOf(b));
  });

  it("answers 404 for an unknown slot", async () => {
    const res = await api(`/api/slots/${unique("missing")}`);
    expect(res.status).toBe(404);
    expect((await errorOf(res)).code).toBe("not_found");
  });

  it("deletes a slot, after which it is gone", async () => {
    const key = unique("gone");
    await putSlot(key, { default: "x" });
    expect((await api(`/api/slots/${key}`, { method: "DELETE" })).status).toBe(204);
    expect((await api(`/api/slots/${key}`)).status).toBe(404);
    expect((await api(`/api/slots/${key}`, { method: "DELETE" })).status).toBe(404);
  });
});

describe("OpenAPI", () => {
  it("documents every personalization route", async () => {
    const doc = (await (await SELF.fetch(`${BASE}/api/openapi.json`)).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    expect(Object.keys(doc.paths["/api/slots/{key}"]).sort()).toEqual(["delete", "get", "put"]);
    for (const path of ["/api/slots", "/api/slots/{key}/stats", "/api/slots/{key}/preview", "/v1/personalize"]) {
      expect(doc.paths[path]?.get).toBeDefined();
    }
  });
});
