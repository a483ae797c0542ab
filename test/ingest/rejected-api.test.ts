import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createDb } from "../../worker/db";
import { rejectedList, storeRejected } from "../../worker/ingest/rejected";
import { api, BASE } from "../helpers/api";
import { basic, ingest, makeEvent, makeIngestSite, recordingQueue } from "./helpers";

describe("GET /api/rejected", () => {
  it("needs credentials", async () => {
    const res = await SELF.fetch(`${BASE}/api/rejected`);
    expect(res.status).toBe(401);
  });

  it("lists a rejected message with its reason after an ingest request", async () => {
    const site = await makeIngestSite();
    await ingest("/v1/batch", {
      body: { batch: [makeEvent(), { type: "track", anonymousId: "a-listed", messageId: "listed-1" }] },
      headers: basic(site.writeKey),
      env: { EVENTS: recordingQueue().queue },
    });
    const page = rejectedList.parse(await (await api("/api/rejected?limit=200")).json());
    const mine = page.items.find((r) => r.siteId === site.id);
    expect(mine?.reason).toMatch(/event/);
    expect(mine?.payload).toContain("listed-1");
    expect(Number.isNaN(Date.parse(mine?.receivedAt ?? ""))).toBe(false);
  });

  it("pages newest first with a cursor", async () => {
    // Far-future times keep these rows ahead of whatever other tests store meanwhile.
    const base = Date.UTC(2200, 0, 1) + Math.floor(Math.random() * 1e9);
    const db = createDb(env.DB);
    await storeRejected(db, "site_pages", [{ index: 0, reason: "oldest", payload: {} }], base);
    await storeRejected(db, "site_pages", [{ index: 0, reason: "middle", payload: {} }], base + 1);
    await storeRejected(db, "site_pages", [{ index: 0, reason: "newest", payload: {} }], base + 2);

    const first = rejectedList.parse(await (await api("/api/rejected?limit=2")).json());
    expect(first.items.map((r) => r.reason)).toEqual(["newest", "middle"]);
    expect(first.nextCursor).not.toBeNull();
    const second = rejectedList.parse(
      await (await api(`/api/rejected?limit=2&cursor=${encodeURIComponent(first.nextCursor ?? "")}`)).json(),
    );
    expect(second.items[0].reason).toBe("oldest");
  });

  it("answers 400 to a limit out of range or a malformed cursor", async () => {
    expect((await api("/api/rejected?limit=0")).status).toBe(400);
    expect((await api("/api/rejected?limit=1000")).status).toBe(400);
    expect((await api("/api/rejected?cursor=x';drop")).status).toBe(400);
  });
});

describe("storeRejected", () => {
  it("writes a thousand rejections in one call, within D1's bound-parameter limit", async () => {
    const db = createDb(env.DB);
    const siteId = `site_bulk_${Math.random().toString(36).slice(2)}`;
    const rejections = Array.from({ length: 1_000 }, (_, index) => ({
      index,
      reason: "bulk",
      payload: { pad: "p".repeat(3_000) },
    }));
    await storeRejected(db, siteId, rejections, Date.now());
    const row = await env.DB.prepare("SELECT count(*) AS n FROM rejected_events WHERE site_id = ?")
      .bind(siteId)
      .first<{ n: number }>();
    expect(row?.n).toBe(1_000);
  });
});
