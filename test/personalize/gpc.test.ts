/**
 * `Sec-GPC: 1` on the personalization routes: the visitor still gets their variant (first-party
 * content), but no exposure event about them is recorded.
 */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { personalizeApi, proxyApp } from "../../worker/personalize";
import { makeSite } from "../helpers/api";
import { putSlot, recordingQueue, seedProfile, seedSegment, unique } from "./seed";

const vip = unique("vip");
const hero = unique("hero");
let site: { id: string; writeKey: string };

beforeAll(async () => {
  await seedSegment(vip);
  await putSlot(hero, { default: "<b>Welcome</b>", rules: [{ id: "vip-hero", segment: vip, content: "<b>VIP</b>" }] });
  site = await makeSite({ name: "GPC shop", originUrl: "https://origin.example" });
});

async function decide(anonymousId: string, headers: Record<string, string>) {
  const { queue, sent } = recordingQueue();
  const ctx = createExecutionContext();
  const res = await personalizeApi.request(
    `/?writeKey=${site.writeKey}&slots=${hero}&anonymousId=${anonymousId}`,
    { headers },
    { ...env, EVENTS: queue },
    ctx,
  );
  const body = (await res.json()) as { slots: Record<string, { content: unknown; variant: string }> };
  await waitOnExecutionContext(ctx);
  return { status: res.status, body, sent };
}

async function proxied(anonymousId: string | null, headers: Record<string, string>) {
  const { queue, sent } = recordingQueue();
  const app = proxyApp({
    fetchOrigin: async () =>
      new Response(`<html><body><div data-tessera-slot="${hero}">static</div></body></html>`, {
        headers: { "Content-Type": "text/html" },
      }),
  });
  const ctx = createExecutionContext();
  const res = await app.request(
    `https://tessera.test/${site.id}/`,
    { headers: { ...(anonymousId ? { Cookie: `tsr_aid=${anonymousId}` } : {}), ...headers } },
    { ...env, EVENTS: queue },
    ctx,
  );
  // Exposures are sent once the document has streamed through.
  const text = await res.text();
  await waitOnExecutionContext(ctx);
  return { text, sent, setCookie: res.headers.get("set-cookie") };
}

describe("/v1/personalize under Sec-GPC: 1", () => {
  it("still answers the visitor's variant", async () => {
    const anonymousId = unique("anon");
    await seedProfile({ anonymousId, segments: [vip] });
    const { status, body } = await decide(anonymousId, { "Sec-GPC": "1" });
    expect(status).toBe(200);
    expect(body.slots[hero]).toEqual({ content: "<b>VIP</b>", variant: "vip-hero" });
  });

  it("records no exposure event", async () => {
    const anonymousId = unique("anon");
    await seedProfile({ anonymousId, segments: [vip] });
    expect((await decide(anonymousId, { "Sec-GPC": "1" })).sent).toEqual([]);
  });

  it("records the exposure of the same visitor without the header", async () => {
    const anonymousId = unique("anon");
    await seedProfile({ anonymousId, segments: [vip] });
    expect((await decide(anonymousId, {})).sent).toHaveLength(1);
  });
});

describe("the rewriting proxy under Sec-GPC: 1", () => {
  it("fills the slot with the visitor's variant and records no exposure", async () => {
    const anonymousId = unique("aid");
    await seedProfile({ anonymousId, segments: [vip] });
    const { text, sent } = await proxied(anonymousId, { "Sec-GPC": "1" });
    expect(text).toContain("<b>VIP</b>");
    expect(sent).toEqual([]);
  });

  it("records the exposure of the same page without the header", async () => {
    const anonymousId = unique("aid");
    await seedProfile({ anonymousId, segments: [vip] });
    expect((await proxied(anonymousId, {})).sent).toHaveLength(1);
  });

  it("sets no visitor cookie on a first visit", async () => {
    const { text, setCookie } = await proxied(null, { "Sec-GPC": "1" });
    expect(text).toContain("<b>Welcome</b>");
    expect(setCookie).toBeNull();
  });

  it("sets the visitor cookie on a first visit without the header", async () => {
    expect((await proxied(null, {})).setCookie).toMatch(/^tsr_aid=[0-9a-f-]{36};/);
  });
});
