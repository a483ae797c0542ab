/**
 * Every /api route × every kind of caller → the status class it must get. The list below is the
 * one place to extend when a route is added (the last test fails until it is listed).
 */
import { env, SELF } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { app } from "../../worker/index";
import { ADMIN_TOKEN, BASE, makeSite, sessionFor, type TestRole, type TestSession } from "../helpers/api";

type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
/** [method, route pattern as mounted, the least role allowed, concrete path (unknown ids, so nothing changes)] */
type Route = [Method, string, TestRole, string?];

const routes: Route[] = [
  ["GET", "/api/auth/me", "viewer"],
  ["POST", "/api/auth/logout", "viewer"],
  ["GET", "/api/users", "viewer"],
  ["POST", "/api/users", "admin"],
  ["GET", "/api/users/:id", "viewer"],
  ["PATCH", "/api/users/:id", "admin"],
  ["DELETE", "/api/users/:id", "admin"],
  ["GET", "/api/contacts", "viewer"],
  ["GET", "/api/contacts/export.csv", "marketer", "/api/contacts/export.csv?tag=none-such"],
  ["POST", "/api/contacts", "marketer"],
  ["POST", "/api/contacts/merge", "marketer"],
  ["GET", "/api/contacts/:id", "viewer"],
  ["PATCH", "/api/contacts/:id", "marketer"],
  ["PATCH", "/api/contacts/:id/traits", "marketer"],
  ["GET", "/api/contacts/:id/notes", "viewer"],
  ["POST", "/api/contacts/:id/notes", "marketer"],
  ["GET", "/api/contacts/:id/tasks", "viewer"],
  ["POST", "/api/contacts/:id/tasks", "marketer"],
  ["DELETE", "/api/notes/:id", "marketer"],
  ["PATCH", "/api/tasks/:id", "marketer"],
  ["DELETE", "/api/tasks/:id", "marketer"],
  ["GET", "/api/imports", "marketer"],
  ["POST", "/api/imports/preview", "marketer"],
  ["POST", "/api/imports", "marketer"],
  ["GET", "/api/imports/:id", "marketer"],
  ["GET", "/api/sites", "viewer"],
  ["POST", "/api/sites", "admin"],
  ["GET", "/api/sites/:id", "viewer"],
  ["PATCH", "/api/sites/:id", "admin"],
  ["POST", "/api/sites/:id/rotate-key", "admin"],
  ["GET", "/api/sites/:id/identity-policy", "viewer"],
  ["PUT", "/api/sites/:id/identity-policy", "admin"],
  ["GET", "/api/profiles", "viewer"],
  ["GET", "/api/profiles/lookup", "viewer"],
  ["GET", "/api/profiles/:id", "viewer"],
  ["GET", "/api/profiles/:id/events", "viewer"],
  ["POST", "/api/profiles/merge", "marketer"],
  ["POST", "/api/profiles/:id/unmerge", "marketer"],
  ["DELETE", "/api/profiles/:id", "admin"],
  ["GET", "/api/profiles/:id/export", "admin"],
  ["GET", "/api/segments", "viewer"],
  ["POST", "/api/segments", "marketer"],
  ["POST", "/api/segments/preview", "viewer"],
  ["GET", "/api/segments/:key", "viewer"],
  ["PUT", "/api/segments/:key", "marketer"],
  ["DELETE", "/api/segments/:key", "marketer"],
  ["POST", "/api/segments/:key/evaluate", "marketer"],
  ["GET", "/api/segments/:key/members", "viewer"],
  ["GET", "/api/segments/:key/history", "viewer"],
  ["GET", "/api/segments/:key/export.csv", "marketer"],
  ["GET", "/api/destinations", "admin"],
  ["POST", "/api/destinations", "admin"],
  ["GET", "/api/destinations/:id", "admin"],
  ["PATCH", "/api/destinations/:id", "admin"],
  ["DELETE", "/api/destinations/:id", "admin"],
  ["GET", "/api/destinations/:id/deliveries", "admin"],
  ["GET", "/api/dead-letters", "admin"],
  ["GET", "/api/stats", "viewer"],
  ["GET", "/api/stats/overview", "viewer"],
  ["GET", "/api/events/latest", "viewer"],
  ["GET", "/api/slots", "viewer"],
  ["GET", "/api/slots/:key", "viewer"],
  ["PUT", "/api/slots/:key", "marketer"],
  ["DELETE", "/api/slots/:key", "marketer"],
  ["GET", "/api/slots/:key/stats", "viewer"],
  ["GET", "/api/slots/:key/preview", "viewer"],
  ["GET", "/api/rejected", "viewer"],
];

const rank: Record<TestRole, number> = { viewer: 0, marketer: 1, admin: 2 };
/** Route patterns with ids nobody has, so that allowed calls end in 4xx without changing data. */
const concrete = (pattern: string) => pattern.replace(":id", "matrix_missing_id").replace(":key", "matrix_missing_key");

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
