import { describe, expect, it } from "vitest";
import { allowed, backoff, campaign, pageKey, type Session, session, size, take } from "../../snippet/rules";
import type { Msg } from "../../snippet/types";

type Track = Extract<Msg, { type: "track" }>;

/** A message as the snippet sends it; `pad` adds that many ASCII characters to its properties. */
const makeMessage = (overrides: Partial<Track> = {}, pad = 0): Track => ({
  type: "track",
  event: "Signed Up",
  properties: { pad: "x".repeat(pad) },
  messageId: crypto.randomUUID(),
  anonymousId: "a3c1b2d4-0000-4000-8000-000000000000",
  timestamp: "2025-01-01T00:00:00.000Z",
  context: {
    page: { path: "/", url: "https://example.com/", title: "Home", referrer: "", search: "" },
    locale: "en-GB",
    timezone: "Europe/London",
    screen: { width: 1440, height: 900, density: 2 },
    library: { name: "tessera.js", version: "0.1.0" },
    sessionId: "s1",
  },
  ...overrides,
});

/** The request body transport.ts builds around a batch. */
const body = (batch: Msg[]) =>
  JSON.stringify({ batch, sentAt: "2025-01-01T00:00:01.000Z", writeKey: "wk_0123456789abcdef0123456789abcdef" });

describe("campaign", () => {
  it("maps utm_campaign to name and keeps source, medium, term and content", () => {
    expect(campaign("?utm_source=news&utm_medium=email&utm_campaign=spring&utm_term=shoes&utm_content=hero")).toEqual({
      source: "news",
      medium: "email",
      name: "spring",
      term: "shoes",
      content: "hero",
    });
  });

  it("is undefined when the query has no utm_ parameter, so context has no campaign", () => {
    expect(campaign("?q=shoes&page=2")).toBeUndefined();
    expect(campaign("")).toBeUndefined();
  });

  it("decodes percent- and plus-encoded values", () => {
    expect(campaign("?utm_campaign=spring%20sale&utm_term=red+shoes")).toEqual({
      name: "spring sale",
      term: "red shoes",
    });
  });

  it("ignores other parameters and a bare utm_ key", () => {
    expect(campaign("?utm_=x&gclid=abc&utm_source=ads")).toEqual({ source: "ads" });
  });
});

describe("take", () => {
  it("sends no batch when nothing is queued", () => {
    expect(take([])).toEqual([]);
  });

  it("keeps small messages together, in order", () => {
    const ms = [makeMessage(), makeMessage(), makeMessage()];
    expect(take(ms)).toEqual(ms);
  });

  it("takes the oldest messages that fit and leaves the rest for the next request", () => {
    const ms = [makeMessage({}, 20_000), makeMessage({}, 20_000), makeMessage({}, 20_000), makeMessage({}, 20_000)];
    expect(take(ms)).toEqual(ms.slice(0, 2));
  });

  it("keeps every request body under the 64 KB a keepalive fetch or a beacon may carry", () => {
    let queue = Array.from({ length: 200 }, (_, i) => makeMessage({}, (i * 7919) % 31_000));
    const sent: Msg[] = [];
    while (queue.length) {
      const batch = take(queue);
      expect(batch.length).toBeGreaterThan(0);
      expect(new Blob([body(batch)]).size).toBeLessThan(65_536);
      sent.push(...batch);
      queue = queue.slice(batch.length);
    }
    expect(sent).toHaveLength(200);
  });

  it("stops at the first message that does not fit, so a batch never skips one", () => {
    const [a, big, b] = [makeMessage({}, 30_000), makeMessage({}, 31_000), makeMessage()];
    expect(take([a, big, b])).toEqual([a]);
  });

  it("counts UTF-8 bytes, not characters", () => {
    const m = makeMessage({ properties: { city: "Zürich 🏔" } });
    expect(size(m)).toBe(new TextEncoder().encode(JSON.stringify(m)).length);
    expect(size(m)).toBeGreaterThan(JSON.stringify(m).length);
  });
});

describe("backoff", () => {
  it("waits 1 s, then 2 s, then 4 s without jitter", () => {
    expect([1, 2, 3].map((n) => backoff(n, 0))).toEqual([1000, 2000, 4000]);
  });

  it("adds less than the base delay again as jitter", () => {
    expect(backoff(2, 0.999)).toBeGreaterThan(2000);
    expect(backoff(2, 0.999)).toBeLessThan(4000);
  });

  it("never waits more than 30 s, however many attempts failed", () => {
    expect(backoff(10, 0.5)).toBe(30_000);
    expect(backoff(1_000, 0.5)).toBe(30_000);
  });
});

describe("pageKey", () => {
  it("tells pages apart by path and query", () => {
    expect(pageKey("https://shop.example/cart")).not.toBe(pageKey("https://shop.example/"));
    expect(pageKey("https://shop.example/search?q=a")).not.toBe(pageKey("https://shop.example/search?q=b"));
  });

  it("ignores an anchor within the page", () => {
    expect(pageKey("https://shop.example/docs#usage")).toBe(pageKey("https://shop.example/docs#intro"));
    expect(pageKey("https://shop.example/docs#usage")).toBe("https://shop.example/docs");
  });

  it("counts a hash route as a page of its own", () => {
    expect(pageKey("https://shop.example/#/cart")).not.toBe(pageKey("https://shop.example/#/checkout"));
    expect(pageKey("https://shop.example/#!/cart")).toBe("https://shop.example/#!/cart");
  });
});

describe("session", () => {
  const minute = 60_000;
  const fresh = () => "new";
  const started: Session = ["s1", 1_000_000];

  it("starts one when none is stored", () => {
    expect(session(undefined, 5, fresh)).toEqual(["new", 5]);
    expect(session(null, 5, fresh)).toEqual(["new", 5]);
  });

  it("continues within 30 minutes of the last activity, and counts this one", () => {
    expect(session(started, started[1] + 29 * minute, fresh)).toEqual(["s1", started[1] + 29 * minute]);
  });

  it("slides: activity every 20 minutes keeps one session for an hour", () => {
    let s = started;
    for (let i = 1; i <= 3; i++) s = session(s, started[1] + i * 20 * minute, fresh);
    expect(s).toEqual(["s1", started[1] + 60 * minute]);
  });

  it("starts a new one after 30 minutes without activity", () => {
    expect(session(started, started[1] + 30 * minute, fresh)).toEqual(["new", started[1] + 30 * minute]);
  });

  it("starts a new one when what is stored is not a session", () => {
    expect(session("garbage" as unknown as Session, 5, fresh)).toEqual(["new", 5]);
  });
});

describe("allowed", () => {
  it("tracks by default when the site does not ask for consent", () => {
    expect(allowed(false, undefined, false)).toBe(true);
  });

  it("stops after the visitor declines", () => {
    expect(allowed(false, "0", false)).toBe(false);
  });

  it("waits for opt-in when the site requires consent", () => {
    expect(allowed(false, undefined, true)).toBe(false);
    expect(allowed(false, "1", true)).toBe(true);
  });

  it("never tracks under Global Privacy Control, even after an opt-in", () => {
    expect(allowed(true, "1", false)).toBe(false);
    expect(allowed(true, "1", true)).toBe(false);
    expect(allowed(true, undefined, false)).toBe(false);
  });
});
