import { describe, expect, it } from "vitest";
import { allowed, backoff, campaign, domains, moved, type Session, session, size, split } from "../../snippet/rules";
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

describe("split", () => {
  it("sends no batch when nothing is queued", () => {
    expect(split([])).toEqual([]);
  });

  it("keeps small messages together, in order", () => {
    const ms = [makeMessage(), makeMessage(), makeMessage()];
    expect(split(ms)).toEqual([ms]);
  });

  it("starts a new batch before one would go over the limit", () => {
    const ms = [makeMessage({}, 20_000), makeMessage({}, 20_000), makeMessage({}, 20_000), makeMessage({}, 20_000)];
    const batches = split(ms);
    expect(batches.map((b) => b.length)).toEqual([2, 2]);
    expect(batches.flat()).toEqual(ms);
  });

  it("keeps every request body under the 64 KB a keepalive fetch or a beacon may carry", () => {
    const ms = Array.from({ length: 200 }, (_, i) => makeMessage({}, (i * 7919) % 31_000));
    const batches = split(ms);
    expect(batches.flat()).toEqual(ms);
    for (const b of batches) expect(new Blob([body(b)]).size).toBeLessThan(65_536);
  });

  it("counts UTF-8 bytes, not characters", () => {
    const m = makeMessage({ properties: { city: "Zürich 🏔" } });
    expect(size(m)).toBe(new TextEncoder().encode(JSON.stringify(m)).length);
    expect(size(m)).toBeGreaterThan(JSON.stringify(m).length);
  });

  it("gives a message over the limit a batch of its own", () => {
    const [a, big, b] = [makeMessage(), makeMessage({}, 500), makeMessage()];
    expect(split([a, big, b], 400)).toEqual([[a], [big], [b]]);
  });
});

describe("backoff", () => {
  it("waits 1 s, then 2 s, then 4 s without jitter", () => {
    expect([1, 2, 3].map((n) => backoff(n, null, 0))).toEqual([1000, 2000, 4000]);
  });

  it("adds less than the base delay again as jitter", () => {
    expect(backoff(2, null, 0.999)).toBeGreaterThan(2000);
    expect(backoff(2, null, 0.999)).toBeLessThan(4000);
  });

  it("never waits more than 30 s on its own", () => {
    expect(backoff(10, null, 0.5)).toBe(30_000);
  });

  it("waits as long as Retry-After says, in seconds", () => {
    expect(backoff(1, "7", 0)).toBe(7000);
    expect(backoff(4, "120", 0)).toBe(120_000);
  });

  it("falls back to doubling when Retry-After is absent, zero or not in seconds", () => {
    for (const header of [null, undefined, "0", "soon", "Wed, 21 Oct 2015 07:28:00 GMT"]) {
      expect(backoff(1, header, 0)).toBe(1000);
    }
  });
});

describe("moved", () => {
  const home = "https://shop.example/";

  it("counts the first page of the visit", () => {
    expect(moved("", home)).toBe(true);
  });

  it("counts a new path or a new query", () => {
    expect(moved(home, "https://shop.example/cart")).toBe(true);
    expect(moved("https://shop.example/search?q=a", "https://shop.example/search?q=b")).toBe(true);
  });

  it("counts a router's push and replace of the same URL once", () => {
    const cart = "https://shop.example/cart";
    expect(moved(home, cart)).toBe(true);
    expect(moved(cart, cart)).toBe(false);
  });

  it("ignores a hash change on History API navigation", () => {
    expect(moved("https://shop.example/docs#intro", "https://shop.example/docs#usage")).toBe(false);
    expect(moved("https://shop.example/docs", "https://shop.example/docs#usage")).toBe(false);
  });

  it("counts a hash change on hash navigation, but not the same hash twice", () => {
    expect(moved("https://shop.example/#/cart", "https://shop.example/#/checkout", true)).toBe(true);
    expect(moved("https://shop.example/#/cart", "https://shop.example/#/cart", true)).toBe(false);
  });
});

describe("domains", () => {
  it("tries the public suffix first, then each longer domain up to the host", () => {
    expect(domains("www.shop.example.co.uk")).toEqual([
      "co.uk",
      "example.co.uk",
      "shop.example.co.uk",
      "www.shop.example.co.uk",
    ]);
  });

  it("tries the registrable domain of a subdomain before the subdomain", () => {
    expect(domains("app.example.com")).toEqual(["example.com", "app.example.com"]);
    expect(domains("example.com")).toEqual(["example.com"]);
  });

  it("leaves the cookie host-only on localhost and IP addresses", () => {
    for (const host of ["localhost", "127.0.0.1", "192.168.1.20", "[::1]", "[2001:db8::1]"]) {
      expect(domains(host)).toEqual([]);
    }
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
