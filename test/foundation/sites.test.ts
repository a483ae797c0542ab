import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createDb } from "../../worker/db";
import { findSiteByWriteKey, siteSchema, WRITE_KEY_TTL_MS } from "../../worker/sites";
import { api, asSession, BASE, env, makeSite, sessionFor } from "../helpers/api";

describe("sites API", () => {
  it("creates a site with a generated write key and normalised origins", async () => {
    const res = await api("/api/sites", {
      body: { name: "Shop", allowedOrigins: ["https://Shop.Example:443/some/path", "http://localhost:3000"] },
    });
    expect(res.status).toBe(201);
    const site = siteSchema.parse(await res.json());
    expect(site.writeKey).toMatch(/^wk_[A-Za-z0-9]{24}$/);
    expect(site.allowedOrigins).toEqual(["https://shop.example", "http://localhost:3000"]);
    expect(site.identityVerification).toBe(false);
  });

  it("lists and reads sites", async () => {
    const site = await makeSite({ name: "Blog" });
    const list = (await (await api("/api/sites")).json()) as { items: { id: string }[] };
    expect(list.items.map((s) => s.id)).toContain(site.id);
    const one = await api(`/api/sites/${site.id}`);
    expect(one.status).toBe(200);
    expect(siteSchema.parse(await one.json()).name).toBe("Blog");
  });

  it("answers 404 for an unknown site", async () => {
    const res = await api("/api/sites/site_missing");
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("not_found");
  });

  it("updates a site's name and origins", async () => {
    const site = await makeSite();
    const res = await api(`/api/sites/${site.id}`, {
      method: "PATCH",
      body: { name: "Renamed", allowedOrigins: ["https://new.example"] },
    });
    expect(res.status).toBe(200);
    const updated = siteSchema.parse(await res.json());
    expect(updated.name).toBe("Renamed");
    expect(updated.allowedOrigins).toEqual(["https://new.example"]);
    expect(updated.writeKey).toBe(site.writeKey);
  });

  it("rotates the write key", async () => {
    const site = await makeSite();
    const res = await api(`/api/sites/${site.id}/rotate-key`, { method: "POST" });
    expect(res.status).toBe(200);
    const rotated = siteSchema.parse(await res.json());
    expect(rotated.writeKey).not.toBe(site.writeKey);
  });

  it("refuses a write key as admin credentials", async () => {
    const site = await makeSite();
    for (const headers of [
      { Authorization: `Bearer ${site.writeKey}` },
      { Authorization: `Basic ${btoa(`${site.writeKey}:`)}` },
    ]) {
      const res = await SELF.fetch(`${BASE}/api/sites`, { headers });
      expect(res.status).toBe(401);
    }
  });

  it("forgets a write key changed behind its back within the cache bound", async () => {
    const site = await makeSite();
    const db = createDb(env.DB);
    const t0 = Date.now() + 60_000;
    expect((await findSiteByWriteKey(db, site.writeKey, t0))?.id).toBe(site.id);
    // Another isolate rotates the key: this one's memory is not told.
    await env.DB.prepare("UPDATE sites SET write_key = ? WHERE id = ?").bind(`${site.writeKey}x`, site.id).run();
    expect((await findSiteByWriteKey(db, site.writeKey, t0 + WRITE_KEY_TTL_MS - 1))?.id).toBe(site.id);
    expect(await findSiteByWriteKey(db, site.writeKey, t0 + WRITE_KEY_TTL_MS)).toBeUndefined();
  });

  it("shows the identity-verification secret to admins only", async () => {
    const site = await makeSite();
    const admin = siteSchema.parse(await (await api(`/api/sites/${site.id}`)).json());
    expect(admin.verificationSecret).toMatch(/^ivs_/);
    const viewer = await sessionFor("viewer");
    const one = siteSchema.parse(await (await asSession(viewer, `/api/sites/${site.id}`)).json());
    expect(one.verificationSecret).toBeUndefined();
    const list = (await (await asSession(viewer, "/api/sites")).json()) as { items: Record<string, unknown>[] };
    expect(list.items.every((s) => !("verificationSecret" in s))).toBe(true);
  });

  it("rejects origins that are not http(s) origins", async () => {
    const res = await api("/api/sites", { body: { name: "x", allowedOrigins: ["javascript:alert(1)"] } });
    expect(res.status).toBe(400);
  });
});

describe("stats", () => {
  it("reports totals", async () => {
    const res = await api("/api/stats");
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, number>;
    expect(body).toMatchObject({
      events: expect.any(Number),
      profiles: expect.any(Number),
      identifiedProfiles: expect.any(Number),
    });
  });
});
