import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ingestResponse, type Message } from "../../worker/wire/events";
import { api } from "../helpers/api";
import { BASE, basic, ingest, makeEvent, makeIngestSite, recordingQueue } from "./helpers";

const single: [path: string, short: string, body: Record<string, unknown>][] = [
  ["track", "t", { event: "Signed Up", anonymousId: "a-1" }],
  ["identify", "i", { userId: "u-1", traits: { email: "ada@example.com" } }],
  ["page", "p", { anonymousId: "a-1", name: "Home" }],
  ["screen", "s", { anonymousId: "a-1", name: "Settings" }],
  ["group", "g", { userId: "u-1", groupId: "acme" }],
  ["alias", "a", { userId: "u-1", previousId: "a-1" }],
];

describe("the /v1 endpoints", () => {
  for (const [path, short, body] of single) {
    for (const p of [path, short]) {
      it(`accepts a ${path} message on /v1/${p} and queues it as type ${path}`, async () => {
        const site = await makeIngestSite();
        const q = recordingQueue();
        const res = await ingest(`/v1/${p}`, { body, headers: basic(site.writeKey), env: { EVENTS: q.queue } });
        expect(res.status).toBe(200);
        expect(ingestResponse.parse(await res.json())).toEqual({ success: true });
        expect(q.sent).toHaveLength(1);
        expect(q.sent[0].siteId).toBe(site.id);
        expect(q.events()).toHaveLength(1);
        expect(q.events()[0].type).toBe(path);
      });
    }
  }

  for (const p of ["batch", "b"]) {
    it(`accepts a batch of mixed message types on /v1/${p}`, async () => {
      const site = await makeIngestSite();
      const q = recordingQueue();
      const batch: Message[] = [
        makeEvent(),
        { type: "identify", userId: "u-7", traits: { plan: "pro" } },
        { type: "page", anonymousId: "a-7", name: "Pricing" },
      ];
      const res = await ingest(`/v1/${p}`, {
        body: { batch },
        headers: basic(site.writeKey),
        env: { EVENTS: q.queue },
      });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ success: true });
      expect(q.events().map((e) => e.type)).toEqual(["track", "identify", "page"]);
    });
  }

  it("carries the fields of each message type into the queued event", async () => {
    const site = await makeIngestSite();
    const q = recordingQueue();
    const batch: Message[] = [
      { type: "track", event: "Order Completed", userId: "u-1", properties: { total: 30 } },
      { type: "group", userId: "u-1", groupId: "acme", traits: { name: "Acme" } },
      { type: "alias", userId: "u-1", previousId: "a-1" },
      { type: "page", anonymousId: "a-1", name: "Docs", category: "Help" },
    ];
    await ingest("/v1/batch", { body: { batch }, headers: basic(site.writeKey), env: { EVENTS: q.queue } });
    const [track, group, alias, page] = q.events();
    expect(track).toMatchObject({ event: "Order Completed", userId: "u-1", properties: { total: 30 } });
    expect(group).toMatchObject({ groupId: "acme", traits: { name: "Acme" } });
    expect(alias).toMatchObject({ userId: "u-1", previousId: "a-1" });
    expect(page).toMatchObject({ name: "Docs", properties: { category: "Help" } });
  });

  it("parses the body as JSON whatever the content type", async () => {
    const site = await makeIngestSite();
    for (const type of ["text/plain;charset=UTF-8", "application/json", "application/x-www-form-urlencoded"]) {
      const q = recordingQueue();
      const res = await ingest("/v1/t", {
        body: makeEvent(),
        headers: { ...basic(site.writeKey), "Content-Type": type },
        env: { EVENTS: q.queue },
      });
      expect(res.status).toBe(200);
      expect(q.events()).toHaveLength(1);
    }
  });
});

describe("write key forms", () => {
  it("accepts the write key as the HTTP Basic username", async () => {
    const site = await makeIngestSite();
    const q = recordingQueue();
    const res = await ingest("/v1/batch", {
      body: { batch: [makeEvent()] },
      headers: basic(site.writeKey),
      env: { EVENTS: q.queue },
    });
    expect(res.status).toBe(200);
    expect(q.sent[0].siteId).toBe(site.id);
  });

  it("accepts the write key in the body", async () => {
    const site = await makeIngestSite();
    const q = recordingQueue();
    const res = await ingest("/v1/batch", {
      body: { batch: [makeEvent()], writeKey: site.writeKey },
      env: { EVENTS: q.queue },
    });
    expect(res.status).toBe(200);
    expect(q.sent[0].siteId).toBe(site.id);
  });

  it("accepts the write key in the query string (beacons)", async () => {
    const site = await makeIngestSite();
    const q = recordingQueue();
    const res = await ingest(`/v1/t?writeKey=${site.writeKey}`, { body: makeEvent(), env: { EVENTS: q.queue } });
    expect(res.status).toBe(200);
    expect(q.sent[0].siteId).toBe(site.id);
  });

  it("prefers the Basic username over a body write key of another site", async () => {
    const mine = await makeIngestSite();
    const other = await makeIngestSite();
    const q = recordingQueue();
    await ingest("/v1/batch", {
      body: { batch: [makeEvent()], writeKey: other.writeKey },
      headers: basic(mine.writeKey),
      env: { EVENTS: q.queue },
    });
    expect(q.sent[0].siteId).toBe(mine.id);
  });
});

describe("the real queue", () => {
  it("makes a batch durable on the local EVENTS queue and answers success", async () => {
    const site = await makeIngestSite();
    const res = await SELF.fetch(`${BASE}/v1/batch`, {
      method: "POST",
      headers: { "Content-Type": "text/plain" },
      body: JSON.stringify({
        batch: [makeEvent(), makeEvent()],
        writeKey: site.writeKey,
        sentAt: new Date().toISOString(),
      }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ success: true });
  });
});

describe("the OpenAPI document", () => {
  it("describes the ingest routes with write-key auth and the rejected-events route", async () => {
    const doc = (await (await api("/api/openapi.json")).json()) as {
      paths: Record<string, Record<string, { security: Record<string, unknown>[] }>>;
    };
    for (const p of ["batch", "track", "identify", "page", "screen", "group", "alias", "b", "t", "a"]) {
      expect(doc.paths[`/v1/${p}`]?.post.security).toEqual([{ writeKey: [] }]);
    }
    expect(doc.paths["/api/rejected"]?.get).toBeDefined();
  });
});
