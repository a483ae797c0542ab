/// <reference types="vite/client" />
/**
 * Issue 10, "Access", beyond the role matrix (test/auth/matrix.test.ts: 68 routes × 9 callers,
 * including "a write key never reads"):
 * - every dashboard page × every kind of caller: the HTML never holds data, anonymous callers get
 *   the sign-in form, signed-in callers the shell (whose session check answers for them);
 * - CSRF on every cookie-authenticated mutation: no token, or a foreign/opaque Origin → 403;
 * - CORS: /api never grants a foreign origin, /v1 never more than `*` without credentials;
 * - /v1/personalize returns no PII and ignores conditions, traits and segments from the query.
 * Rate limits answering 429 are tested where they live: the ingest limiter in
 * test/ingest/errors.test.ts ("answers 429 with Retry-After…", "rate limits a write key sent in the
 * body too"), the sign-in lockout in test/auth/login.test.ts ("answers 429 with Retry-After to any
 * password while the account is locked", "locks an account that keeps failing over HTTP") and
 * test/auth/throttle.test.ts.
 */
import { createExecutionContext, env, SELF, waitOnExecutionContext } from "cloudflare:test";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import dashboardSource from "../../dashboard/index.tsx?raw";
import { app } from "../../worker";
import { concrete, routes } from "../auth/routes";
import { BASE, makeSite, sessionFor, type TestRole, type TestSession } from "../helpers/api";
import { recordingQueue } from "../ingest/helpers";
import { putSlot, seedProfile, seedSegment, unique } from "../personalize/seed";

const EVIL = "https://evil.example";
const ALLOWED = "https://shop.example";

/** Every check of the file, for the summary line. */
const checked = { targets: new Set<string>(), callers: new Set<string>(), checks: 0, unexpected: 0 };

/** Compares outcomes to expectations one by one, counting both, then asserts they all matched. */
function expectOutcomes(target: string, outcomes: { caller: string; got: string; want: string }[]) {
  checked.targets.add(target);
  for (const o of outcomes) {
    checked.callers.add(o.caller);
    checked.checks++;
    if (o.got !== o.want) checked.unexpected++;
  }
  expect(outcomes.map((o) => `${o.caller}: ${o.got}`)).toEqual(outcomes.map((o) => `${o.caller}: ${o.want}`));
}

// Requests run in parallel per check; the timeouts below leave a margin for a loaded CI machine.
afterAll(() => {
  console.log(
    `access campaign: ${checked.targets.size} routes/pages × ${checked.callers.size} callers = ${checked.checks} checks, ${checked.unexpected} unexpected`,
  );
});

let site: { id: string; writeKey: string };
const sessions = new Map<TestRole, TestSession>();
let expired: TestSession;
// Contact data seeded where pages and decisions could leak it.
const pii = {
  email: `${unique("jane")}@pii.example`,
  name: `Jane ${unique("Doe")}`,
  userId: unique("user-pii"),
  anonymousId: unique("anon-pii"),
  plan: `enterprise-${unique("plan")}`,
  company: `Initech ${unique("co")}`,
};
let profileId = "";
const vip = unique("vip").toLowerCase();
const hero = unique("hero").toLowerCase();

beforeAll(async () => {
  site = await makeSite({ allowedOrigins: [ALLOWED] });
  for (const role of ["viewer", "marketer", "admin"] as const) sessions.set(role, await sessionFor(role));
  expired = await sessionFor("admin");
  await env.DB.prepare("UPDATE sessions SET expires_at = 1 WHERE user_id = ?").bind(expired.user.id).run();
  await seedSegment(vip);
  await putSlot(hero, { default: "<p>Welcome</p>", rules: [{ id: "vip-offer", segment: vip, content: "<p>VIP</p>" }] });
  profileId = await seedProfile({
    anonymousId: pii.anonymousId,
    userId: pii.userId,
    email: pii.email,
    name: pii.name,
    traits: { email: pii.email, name: pii.name, plan: pii.plan, company: pii.company },
    segments: [vip],
  });
});

const secrets = () => [pii.email, pii.name, pii.userId, pii.anonymousId, pii.plan, pii.company, profileId];

// ---------------------------------------------------------------------------------------------
// Dashboard pages

/** The client's page patterns, read from dashboard/index.tsx so that a new page is not missed. */
const clientPatterns = [...dashboardSource.matchAll(/path: "(\/dashboard[^"]*)"/g)].map((m) => m[1]);

/** A concrete URL for a page pattern: a real contact for the contact page, else a known key. */
const urlOf = (pattern: string) =>
  pattern.replace(":id", pattern.includes("contacts") ? profileId : "dst_missing").replace(":key", vip);

interface PageCaller {
  label: string;
  headers: () => Record<string, string>;
  /** What the shell's own session check (`GET /api/auth/me`) answers this caller. */
  want: string;
}

const cookieOf = (s: TestSession) => ({ Cookie: s.cookie });
const pageCallers = (): PageCaller[] => [
  { label: "no credentials", headers: () => ({}), want: "sign-in form; session 401" },
  {
    label: "a write key",
    headers: () => ({ Authorization: `Basic ${btoa(`${site.writeKey}:`)}` }),
    want: "sign-in form; session 401",
  },
  {
    label: "a forged session",
    headers: () => ({ Cookie: `tessera_session=${"f".repeat(43)}` }),
    want: "loading shell; session 401",
  },
  { label: "an expired session", headers: () => cookieOf(expired), want: "loading shell; session 401" },
  ...(["viewer", "marketer", "admin"] as const).map((role) => ({
    label: `a ${role} session`,
    headers: () => cookieOf(sessions.get(role) as TestSession),
    want: `loading shell; session 200 ${role}`,
  })),
];

/** What a page shows before any script runs: the sign-in form, or the shell waiting for the app. */
function pageKind(html: string): string {
  const app = /<script defer(="")? src="\/dashboard\/app.js"><\/script>/.test(html);
  const outsideNoscript = html.replace(/<noscript>[\s\S]*?<\/noscript>/g, "");
  if (app && /<form method="post" action="\/api\/auth\/login">/.test(outsideNoscript)) return "sign-in form";
  if (app && html.includes("Loading…") && /<noscript>[\s\S]*action="\/api\/auth\/login"/.test(html)) {
    return "loading shell";
  }
  return "unexpected page";
}

async function sessionCheck(headers: Record<string, string>): Promise<string> {
  const res = await SELF.fetch(`${BASE}/api/auth/me`, { headers });
  if (res.status !== 200) return `session ${res.status}`;
  return `session 200 ${((await res.json()) as { user: { role: string } }).user.role}`;
}

describe("dashboard pages", { timeout: 20_000 }, () => {
  it("reads every client route from the dashboard source, deep links included", () => {
    expect(clientPatterns.length).toBeGreaterThanOrEqual(16);
    expect(clientPatterns).toContain("/dashboard/contacts/:id");
  });

  it("redirects / to the dashboard for every caller", async () => {
    const outcomes = await Promise.all(
      pageCallers().map(async (caller) => {
        const res = await SELF.fetch(`${BASE}/`, { headers: caller.headers(), redirect: "manual" });
        return { caller: caller.label, got: `${res.status} ${res.headers.get("location")}`, want: "302 /dashboard" };
      }),
    );
    expectOutcomes("/", outcomes);
  });

  for (const pattern of ["/dashboard/login", ...clientPatterns]) {
    it(`answers ${pattern} with the sign-in form to anonymous callers and the shell to sessions, holding no contact data`, async () => {
      const outcomes = await Promise.all(
        pageCallers().map(async (caller) => {
          const res = await SELF.fetch(`${BASE}${urlOf(pattern)}`, { headers: caller.headers(), redirect: "manual" });
          const html = await res.text();
          const leaked = secrets().filter((s) => html.includes(s));
          const shown = `${res.status} ${pageKind(html)}${leaked.length ? ` LEAKS ${leaked.join(",")}` : ""}`;
          return {
            caller: caller.label,
            got: `${shown}; ${await sessionCheck(caller.headers())}`,
            want: `200 ${caller.want}`,
          };
        }),
      );
      expectOutcomes(pattern, outcomes);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// CSRF

const mutations = routes.filter(([method]) => method !== "GET");

describe("CSRF on cookie-authenticated mutations", { timeout: 20_000 }, () => {
  it("takes every mutation route from the matrix's route list", () => {
    expect(mutations.length).toBeGreaterThanOrEqual(30);
  });

  for (const [method, pattern, , path = concrete(pattern)] of mutations) {
    it(`refuses ${method} ${pattern} with a session cookie but no CSRF token, or from a foreign or opaque origin`, async () => {
      // An admin session: every role check passes, so a 403 can only be the CSRF defence.
      const admin = sessions.get("admin") as TestSession;
      const attempts: { caller: string; headers: Record<string, string>; want: string }[] = [
        { caller: "session cookie without X-CSRF-Token", headers: { Cookie: admin.cookie }, want: "403 csrf" },
        {
          caller: "session cookie and token from a foreign Origin",
          headers: { Cookie: admin.cookie, "X-CSRF-Token": admin.csrfToken, Origin: EVIL },
          want: "403 origin",
        },
        {
          caller: "session cookie and token from an opaque Origin (null)",
          headers: { Cookie: admin.cookie, "X-CSRF-Token": admin.csrfToken, Origin: "null" },
          want: "403 origin",
        },
      ];
      const outcomes = await Promise.all(
        attempts.map(async (a) => {
          const res = await SELF.fetch(`${BASE}${path}`, {
            method,
            headers: { "Content-Type": "application/json", ...a.headers },
            body: "{}",
          });
          const message =
            res.status === 403 ? ((await res.json()) as { error: { message: string } }).error.message : "";
          const why = /CSRF/.test(message) ? "csrf" : /Cross-origin/.test(message) ? "origin" : message;
          return { caller: a.caller, got: `${res.status} ${why}`.trim(), want: a.want };
        }),
      );
      expectOutcomes(`${method} ${pattern}`, outcomes);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// CORS

/** Whether a response lets `origin` read it with credentials, or at all. */
function corsGrant(res: Response, origin: string): string {
  const allowOrigin = res.headers.get("access-control-allow-origin");
  const credentials = res.headers.get("access-control-allow-credentials") === "true";
  if (allowOrigin === origin) return credentials ? "reflects origin with credentials" : "reflects origin";
  if (credentials) return `credentials for ${allowOrigin}`;
  return allowOrigin === "*" ? "any origin, no credentials" : "no grant";
}

describe("CORS on /api", { timeout: 20_000 }, () => {
  for (const [method, pattern, , path = concrete(pattern)] of routes) {
    it(`never grants a foreign origin on ${method} ${pattern}: preflight, anonymous or with a session`, async () => {
      const admin = sessions.get("admin") as TestSession;
      const outcomes = await Promise.all([
        SELF.fetch(`${BASE}${path}`, {
          method: "OPTIONS",
          headers: {
            Origin: EVIL,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "content-type, x-csrf-token",
          },
        }).then((res) => ({ caller: "preflight", got: corsGrant(res, EVIL), want: "no grant" })),
        SELF.fetch(`${BASE}${path}`, {
          method,
          headers: { Origin: EVIL, "Content-Type": "application/json" },
          body: method === "GET" ? undefined : "{}",
        }).then((res) => ({ caller: "foreign page, no credentials", got: corsGrant(res, EVIL), want: "no grant" })),
        SELF.fetch(`${BASE}${path}`, {
          method,
          headers: { Origin: EVIL, Cookie: admin.cookie, "X-CSRF-Token": admin.csrfToken },
          body: method === "GET" ? undefined : "{}",
        }).then((res) => ({ caller: "foreign page, with session", got: corsGrant(res, EVIL), want: "no grant" })),
      ]);
      expectOutcomes(`${method} ${pattern}`, outcomes);
    });
  }
});

describe("CORS on /v1", { timeout: 20_000 }, () => {
  const batch = () => JSON.stringify({ batch: [{ type: "track", event: "E", anonymousId: unique("a") }] });

  it("answers preflights with * and never credentials, whatever the origin", async () => {
    for (const path of ["/v1/batch", "/v1/t", "/v1/personalize"]) {
      const outcomes = await Promise.all(
        [EVIL, ALLOWED].map(async (origin) => {
          const res = await SELF.fetch(`${BASE}${path}`, {
            method: "OPTIONS",
            headers: {
              Origin: origin,
              "Access-Control-Request-Method": path === "/v1/personalize" ? "GET" : "POST",
              "Access-Control-Request-Headers": "content-type",
            },
          });
          return {
            caller: `preflight from ${origin}`,
            got: corsGrant(res, origin),
            want: "any origin, no credentials",
          };
        }),
      );
      expectOutcomes(`OPTIONS ${path}`, outcomes);
    }
  });

  it("accepts events only from the site's allowed origins, and grants no page credentials", async () => {
    const outcomes = [];
    for (const [origin, want] of [
      [EVIL, "403, nothing queued, any origin, no credentials"],
      [ALLOWED, "200, queued, any origin, no credentials"],
    ] as const) {
      const q = recordingQueue();
      // The ingest handler with a recording queue: what reaches the queue is what would be stored.
      const ctx = createExecutionContext();
      const res = await app.fetch(
        new Request(`${BASE}/v1/batch?writeKey=${site.writeKey}`, {
          method: "POST",
          headers: { Origin: origin, "Content-Type": "text/plain" },
          body: batch(),
        }),
        { ...env, EVENTS: q.queue },
        ctx,
      );
      await waitOnExecutionContext(ctx);
      const got = `${res.status}, ${q.sent.length ? "queued" : "nothing queued"}, ${corsGrant(res, origin)}`;
      outcomes.push({ caller: `page on ${origin}`, got, want });
    }
    expectOutcomes("POST /v1/batch", outcomes);
  });

  it("answers decisions to any page without credentials", async () => {
    const res = await SELF.fetch(`${BASE}/v1/personalize?writeKey=${site.writeKey}&slots=${hero}&anonymousId=x`, {
      headers: { Origin: EVIL },
    });
    expectOutcomes("GET /v1/personalize", [
      {
        caller: `page on ${EVIL}`,
        got: `${res.status} ${corsGrant(res, EVIL)}`,
        want: "200 any origin, no credentials",
      },
    ]);
  });
});

// ---------------------------------------------------------------------------------------------
// Personalization: no PII out, no conditions in

async function decisionText(query: string): Promise<string> {
  const res = await SELF.fetch(`${BASE}/v1/personalize?writeKey=${site.writeKey}&slots=${hero}&${query}`);
  expect(res.status).toBe(200);
  return res.text();
}

describe("/v1/personalize with a write key", { timeout: 20_000 }, () => {
  it("never returns a trait, email, name or identifier of the profile it decided for", async () => {
    const outcomes = [];
    for (const [caller, query] of [
      ["by anonymousId", `anonymousId=${pii.anonymousId}`],
      ["by userId", `userId=${pii.userId}`],
      ["by both", `anonymousId=${pii.anonymousId}&userId=${pii.userId}`],
    ]) {
      const text = await decisionText(query);
      const leaked = secrets().filter((s) => text.includes(s));
      outcomes.push({
        caller,
        got: `${JSON.parse(text).slots[hero].variant}${leaked.length ? ` LEAKS ${leaked.join(",")}` : ""}`,
        want: "vip-offer",
      });
    }
    expectOutcomes("GET /v1/personalize (PII)", outcomes);
  });

  it("ignores traits, segments and conditions passed in the query", async () => {
    const stranger = `anonymousId=${unique("stranger")}`;
    const baseline = await decisionText(stranger);
    expect(JSON.parse(baseline).slots[hero].variant).toBe("default");
    const attempts = [
      `traits[plan]=${pii.plan}`,
      `traits.plan=${pii.plan}`,
      `traits=${encodeURIComponent(JSON.stringify({ plan: pii.plan }))}`,
      `segments=${vip}`,
      `segments[]=${vip}`,
      `segment=${vip}`,
      `plan=${pii.plan}`,
      `conditions=${encodeURIComponent(JSON.stringify({ segment: vip }))}`,
      `rule=${encodeURIComponent(JSON.stringify({ trait: "plan", op: "exists" }))}`,
      `profileId=${profileId}`,
      `variant=vip-offer`,
    ];
    const outcomes = await Promise.all(
      attempts.map(async (extra) => ({
        caller: extra.split("=")[0],
        got: (await decisionText(`${stranger}&${extra}`)) === baseline ? "same answer" : "answer changed",
        want: "same answer",
      })),
    );
    expectOutcomes("GET /v1/personalize (query conditions)", outcomes);
  });
});
