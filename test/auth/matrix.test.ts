/**
 * Every /api route × every kind of caller → the status class it must get. The route list
 * (./routes.ts) is the one place to extend when a route is added (the last test fails until it is
 * listed).
 */
import { env, SELF } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { app } from "../../worker/index";
import { ADMIN_TOKEN, BASE, makeSite, sessionFor, type TestRole, type TestSession } from "../helpers/api";
import { concrete, type Method, routes } from "./routes";

const rank: Record<TestRole, number> = { viewer: 0, marketer: 1, admin: 2 };
type Caller = { label: string; headers: () => Promise<Record<string, string>>; role?: TestRole };

const sessions = new Map<string, Promise<TestSession>>();
const sessionOf = (role: TestRole) => {
  if (!sessions.has(role)) sessions.set(role, sessionFor(role));
  return sessions.get(role) as Promise<TestSession>;
};
const withSession = (s: TestSession) => ({ Cookie: s.cookie, "X-CSRF-Token": s.csrfToken });

let writeKey = "";
beforeAll(async () => {
  writeKey = (await makeSite()).writeKey;
});

let expired: Promise<TestSession> | undefined;
const expiredSession = () => {
  expired ??= sessionFor("admin").then(async (s) => {
    await env.DB.prepare("UPDATE sessions SET expires_at = 1 WHERE user_id = ?").bind(s.user.id).run();
    return s;
  });
  return expired;
};

const callers: Caller[] = [
  { label: "no credentials", headers: async () => ({}) },
  { label: "a write key as bearer", headers: async () => ({ Authorization: `Bearer ${writeKey}` }) },
  { label: "a write key as basic", headers: async () => ({ Authorization: `Basic ${btoa(`${writeKey}:`)}` }) },
  {
    label: "a forged session cookie",
    headers: async () => ({ Cookie: `tessera_session=${"f".repeat(43)}`, "X-CSRF-Token": "x" }),
  },
  { label: "an expired session", headers: async () => withSession(await expiredSession()) },
  ...(["viewer", "marketer", "admin"] as const).map((role) => ({
    label: `a ${role} session`,
    role,
    headers: async () => withSession(await sessionOf(role)),
  })),
  { label: "the ADMIN_TOKEN bearer", role: "admin", headers: async () => ({ Authorization: `Bearer ${ADMIN_TOKEN}` }) },
];

async function call(method: Method, path: string, headers: Record<string, string>) {
  return SELF.fetch(`${BASE}${path}`, {
    method,
    headers: { "Content-Type": "application/json", ...headers },
    body: method === "GET" ? undefined : "{}",
  });
}

/** What a caller must get: 401 without valid credentials, 403 below the route's role, else neither. */
function expectation(caller: Caller, need: TestRole): "401" | "403" | "allowed" {
  if (!caller.role) return "401";
  return rank[caller.role] >= rank[need] ? "allowed" : "403";
}

describe("authorisation matrix", () => {
  for (const [method, pattern, need, path = concrete(pattern)] of routes) {
    it(`${method} ${pattern} (${need}): 401 without credentials, 403 below ${need}, allowed from ${need} up`, async () => {
      const expected = callers.map((caller) => `${caller.label}: ${expectation(caller, need)}`);
      // The callers are independent: ask in parallel.
      const outcomes = await Promise.all(
        callers.map(async (caller) => {
          // Signing out ends the session: use a throwaway one for that route.
          const headers =
            pattern === "/api/auth/logout" && caller.role && !caller.label.includes("ADMIN_TOKEN")
              ? withSession(await sessionFor(caller.role))
              : await caller.headers();
          const status = (await call(method, path, headers)).status;
          const got = status === 401 ? "401" : status === 403 ? "403" : status < 500 ? "allowed" : `5xx ${status}`;
          return `${caller.label}: ${got}`;
        }),
      );
      expect(outcomes).toEqual(expected);
      // Nine calls: generous for a loaded CI machine.
    }, 30_000);
  }

  it("lists every mounted /api route", () => {
    const listed = new Set(routes.map(([method, pattern]) => `${method} ${pattern}`));
    const mounted = app.routes
      .filter((r) => r.method !== "ALL" && r.path.startsWith("/api/"))
      .map((r) => `${r.method} ${r.path}`)
      .filter((r) => r !== "GET /api/openapi.json" && r !== "POST /api/auth/login");
    expect([...new Set(mounted)].filter((r) => !listed.has(r))).toEqual([]);
  });
});
