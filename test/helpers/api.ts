/** Small helpers for route tests: authenticated calls and factories. */
import { env, SELF } from "cloudflare:test";

export const ADMIN_TOKEN = "test-admin-token-0123456789";
export const BASE = "https://tessera.test";

export function adminHeaders(extra: Record<string, string> = {}): Record<string, string> {
  return { Authorization: `Bearer ${ADMIN_TOKEN}`, "Content-Type": "application/json", ...extra };
}

/** Calls the worker as the admin. */
export function api(path: string, init: { method?: string; body?: unknown; headers?: Record<string, string> } = {}) {
  return SELF.fetch(`${BASE}${path}`, {
    method: init.method ?? (init.body === undefined ? "GET" : "POST"),
    headers: adminHeaders(init.headers),
    body: init.body === undefined ? undefined : typeof init.body === "string" ? init.body : JSON.stringify(init.body),
  });
}

/** Creates a site through the API and returns its JSON. */
export async function makeSite(overrides: Record<string, unknown> = {}) {
  const res = await api("/api/sites", {
    body: { name: "Shop", allowedOrigins: ["https://shop.example"], ...overrides },
  });
  if (res.status !== 201) throw new Error(`makeSite: ${res.status} ${await res.text()}`);
  return (await res.json()) as { id: string; writeKey: string; name: string; allowedOrigins: string[] };
}

export { env };

export type TestRole = "admin" | "marketer" | "viewer";

/** A signed-in dashboard user: the cookie to send and the session's CSRF token. */
export interface TestSession {
  user: { id: string; email: string; role: TestRole };
  password: string;
  cookie: string;
  csrfToken: string;
}

let userCounter = 0;

/** Creates a dashboard user through the admin API. */
export async function makeUser(role: TestRole, overrides: { email?: string; password?: string; name?: string } = {}) {
  const email = overrides.email ?? `${role}-${Date.now()}-${++userCounter}@team.example`;
  const password = overrides.password ?? "correct horse battery";
  const res = await api("/api/users", { body: { email, password, role, name: overrides.name } });
  if (res.status !== 201) throw new Error(`makeUser: ${res.status} ${await res.text()}`);
  const user = (await res.json()) as { id: string; email: string; role: TestRole };
  return { user, password };
}

/** Signs in with JSON and returns the session cookie and CSRF token. */
export async function signIn(email: string, password: string): Promise<{ cookie: string; csrfToken: string }> {
  const res = await SELF.fetch(`${BASE}/api/auth/login`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email, password }),
  });
  if (res.status !== 200) throw new Error(`signIn: ${res.status} ${await res.text()}`);
  const cookie = (res.headers.get("set-cookie") ?? "").split(";")[0];
  const { csrfToken } = (await res.json()) as { csrfToken: string };
  return { cookie, csrfToken };
}

/** A new user of `role`, signed in. */
export async function sessionFor(role: TestRole): Promise<TestSession> {
  const { user, password } = await makeUser(role);
  return { user, password, ...(await signIn(user.email, password)) };
}

/** Calls the worker with a session cookie (and its CSRF token unless `csrf: false`). */
export function asSession(
  session: Pick<TestSession, "cookie" | "csrfToken">,
  path: string,
  init: { method?: string; body?: unknown; headers?: Record<string, string>; csrf?: boolean } = {},
) {
  return SELF.fetch(`${BASE}${path}`, {
    method: init.method ?? (init.body === undefined ? "GET" : "POST"),
    headers: {
      Cookie: session.cookie,
      "Content-Type": "application/json",
      ...(init.csrf === false ? {} : { "X-CSRF-Token": session.csrfToken }),
      ...init.headers,
    },
    body: init.body === undefined ? undefined : typeof init.body === "string" ? init.body : JSON.stringify(init.body),
  });
}

let profileCounter = 0;

/** Inserts a live profile directly (for CRM tests that do not need the pipeline). */
export async function seedProfile(
  overrides: Partial<{
    id: string;
    email: string | null;
    name: string | null;
    lifecycleStage: string | null;
    ownerId: string | null;
    tags: string[];
    mergedInto: string | null;
    lastSeenAt: number | null;
    createdAt: number;
  }> = {},
) {
  const now = Date.now();
  const p = {
    id: `prf_test_${now}_${++profileCounter}`,
    email: null,
    name: null,
    lifecycleStage: null,
    ownerId: null,
    tags: [] as string[],
    mergedInto: null,
    lastSeenAt: now,
    createdAt: now,
    ...overrides,
  };
  // profile_tags follows through the table's triggers.
  await env.DB.prepare(
    `INSERT INTO profiles (id, merged_into, email, name, identified, lifecycle_stage, owner_id, tags, last_seen_at, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  )
    .bind(
      p.id,
      p.mergedInto,
      p.email,
      p.name,
      p.email ? 1 : 0,
      p.lifecycleStage,
      p.ownerId,
      JSON.stringify(p.tags),
      p.lastSeenAt,
      p.createdAt,
      p.createdAt,
    )
    .run();
  return p;
}
