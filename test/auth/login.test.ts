import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { hashPassword, verifyPassword } from "../../worker/auth/password";
import { meSchema, sessionSchema } from "../../worker/auth/routes";
import { asSession, BASE, makeUser, sessionFor, signIn } from "../helpers/api";

const form = (fields: Record<string, string>, base = BASE, headers: Record<string, string> = {}) =>
  SELF.fetch(`${base}/api/auth/login`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(fields).toString(),
    redirect: "manual",
  });

const json = (body: unknown, headers: Record<string, string> = {}) =>
  SELF.fetch(`${BASE}/api/auth/login`, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: JSON.stringify(body),
  });

describe("passwords", () => {
  it("verifies the password it hashed and nothing else", async () => {
    const { hash, salt } = await hashPassword("correct horse battery");
    expect(await verifyPassword("correct horse battery", hash, salt)).toBe(true);
    expect(await verifyPassword("correct horse batterY", hash, salt)).toBe(false);
  });

  it("salts every hash differently", async () => {
    const a = await hashPassword("same password here");
    const b = await hashPassword("same password here");
    expect(a.salt).not.toBe(b.salt);
    expect(a.hash).not.toBe(b.hash);
  });
});

describe("sign-in", () => {
  it("signs in with JSON and answers the user and a CSRF token", async () => {
    const { user, password } = await makeUser("marketer", { name: "Mia" });
    const res = await json({ email: user.email.toUpperCase(), password });
    expect(res.status).toBe(200);
    const body = sessionSchema.parse(await res.json());
    expect(body.user).toMatchObject({ id: user.id, email: user.email, role: "marketer", name: "Mia" });
    expect(body.csrfToken.length).toBeGreaterThanOrEqual(32);
    expect(JSON.stringify(body)).not.toMatch(/hash|salt/i);
  });

  it("sets an HttpOnly, SameSite=Lax, Secure session cookie for the whole site", async () => {
    const { user, password } = await makeUser("viewer");
    const cookie = (await json({ email: user.email, password })).headers.get("set-cookie") ?? "";
    expect(cookie).toMatch(/^tessera_session=[A-Za-z0-9_-]{43};/);
    expect(cookie).toMatch(/; HttpOnly/);
    expect(cookie).toMatch(/; SameSite=Lax/);
    expect(cookie).toMatch(/; Secure/);
    expect(cookie).toMatch(/; Path=\//);
    expect(cookie).toMatch(/; Max-Age=604800/);
  });

  it("leaves Secure off on localhost, where the dashboard runs over http", async () => {
    const { user, password } = await makeUser("viewer");
    const res = await form({ email: user.email, password }, "http://localhost:8787");
    expect(res.status).toBe(303);
    const cookie = res.headers.get("set-cookie") ?? "";
    expect(cookie).toMatch(/^tessera_session=/);
    expect(cookie).not.toMatch(/Secure/);
  });

  it("stores only a hash of the session token", async () => {
    const { user, password } = await makeUser("viewer");
    const { cookie } = await signIn(user.email, password);
    const token = cookie.split("=")[1];
    const rows = await env.DB.prepare("SELECT id FROM sessions WHERE user_id = ?").bind(user.id).all<{ id: string }>();
    expect(rows.results).toHaveLength(1);
    expect(rows.results[0].id).toMatch(/^[0-9a-f]{64}$/);
    expect(rows.results[0].id).not.toContain(token);
  });

  it("redirects a successful form post to the dashboard with 303", async () => {
    const { user, password } = await makeUser("viewer");
    const res = await form({ email: user.email, password });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/dashboard");
    expect(res.headers.get("set-cookie")).toMatch(/^tessera_session=/);
  });

  it("redirects a failed form post back to the sign-in page with error=1 and no cookie", async () => {
    const { user } = await makeUser("viewer");
    const res = await form({ email: user.email, password: "wrong password!" });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/dashboard/login?error=1");
    expect(res.headers.get("set-cookie")).toBeNull();
  });

  it("answers a wrong password with 401 in the error envelope", async () => {
    const { user } = await makeUser("viewer");
    const res = await json({ email: user.email, password: "wrong password!" });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("unauthorized");
  });

  it("answers an unknown email exactly like a wrong password", async () => {
    const res = await json({ email: "nobody@nowhere.example", password: "whatever it is" });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { message: string } }).error.message).toBe("Wrong email or password");
  });

  it("rejects malformed sign-in bodies with 400", async () => {
    expect((await json({ email: "not-an-email", password: "x" })).status).toBe(400);
    expect((await json({ email: "a@b.example", password: "x".repeat(201) })).status).toBe(400);
    const broken = await SELF.fetch(`${BASE}/api/auth/login`, { method: "POST", body: "{" });
    expect(broken.status).toBe(400);
  });

  it("refuses a sign-in posted from another site (login CSRF)", async () => {
    const { user, password } = await makeUser("viewer");
    expect((await json({ email: user.email, password }, { Origin: "https://evil.example" })).status).toBe(403);
    const res = await form({ email: user.email, password }, BASE, { Origin: "https://evil.example" });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/dashboard/login?error=origin");
    expect(res.headers.get("set-cookie")).toBeNull();
  });

  it("answers 429 with Retry-After to any password while the account is locked", async () => {
    const { user, password } = await makeUser("viewer");
    await env.DB.prepare("UPDATE users SET failed_logins = 5, locked_until = ? WHERE id = ?")
      .bind(Date.now() + 30_000, user.id)
      .run();
    const res = await json({ email: user.email, password });
    expect(res.status).toBe(429);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("rate_limited");
    const retryAfter = Number(res.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThan(25);
    expect(retryAfter).toBeLessThanOrEqual(30);
    const viaForm = await form({ email: user.email, password });
    expect(viaForm.headers.get("location")).toBe("/dashboard/login?error=locked");
  });

  it("locks an account that keeps failing over HTTP", async () => {
    const { user } = await makeUser("viewer");
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await json({ email: user.email, password: "wrong password!" })).status);
    expect(statuses).toEqual([401, 401, 401, 401, 401]);
    const row = await env.DB.prepare("SELECT failed_logins, locked_until FROM users WHERE id = ?")
      .bind(user.id)
      .first<{ failed_logins: number; locked_until: number | null }>();
    expect(row?.failed_logins).toBe(5);
    expect(row?.locked_until).toBeGreaterThan(Date.now() - 2_000);
  });

  it("caps the lock at 15 minutes however many failures", async () => {
    const { user, password } = await makeUser("viewer");
    await env.DB.prepare("UPDATE users SET failed_logins = 60 WHERE id = ?").bind(user.id).run();
    await json({ email: user.email, password: "wrong password!" });
    const res = await json({ email: user.email, password });
    expect(res.status).toBe(429);
    const retryAfter = Number(res.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThan(800);
    expect(retryAfter).toBeLessThanOrEqual(900);
  });

  it("resets the failure count after a successful sign-in", async () => {
    const { user, password } = await makeUser("viewer");
    for (let i = 0; i < 3; i++) await json({ email: user.email, password: "wrong password!" });
    expect((await json({ email: user.email, password })).status).toBe(200);
    const row = await env.DB.prepare("SELECT failed_logins FROM users WHERE id = ?")
      .bind(user.id)
      .first<{ failed_logins: number }>();
    expect(row?.failed_logins).toBe(0);
  });
});

describe("sessions", () => {
  it("answers /api/auth/me with the user and the session's CSRF token", async () => {
    const s = await sessionFor("marketer");
    const res = await asSession(s, "/api/auth/me");
    expect(res.status).toBe(200);
    const me = meSchema.parse(await res.json());
    expect(me.user?.id).toBe(s.user.id);
    expect(me.role).toBe("marketer");
    expect(me.csrfToken).toBe(s.csrfToken);
  });

  it("ends the session server-side on logout, so the old cookie stops working", async () => {
    const s = await sessionFor("viewer");
    const res = await asSession(s, "/api/auth/logout", { method: "POST" });
    expect(res.status).toBe(204);
    expect(res.headers.get("set-cookie")).toMatch(/tessera_session=;.*Max-Age=0/);
    expect((await asSession(s, "/api/auth/me")).status).toBe(401);
  });

  it("rejects an expired session", async () => {
    const s = await sessionFor("viewer");
    await env.DB.prepare("UPDATE sessions SET expires_at = ? WHERE user_id = ?")
      .bind(Date.now() - 1, s.user.id)
      .run();
    expect((await asSession(s, "/api/auth/me")).status).toBe(401);
  });

  it("rejects a forged session cookie", async () => {
    const res = await asSession({ cookie: `tessera_session=${"A".repeat(43)}`, csrfToken: "x" }, "/api/auth/me");
    expect(res.status).toBe(401);
  });

  it("uses the user's current role, so a demotion takes effect at once", async () => {
    const s = await sessionFor("marketer");
    await env.DB.prepare("UPDATE users SET role = 'viewer' WHERE id = ?").bind(s.user.id).run();
    const res = await asSession(s, "/api/contacts/prf_none/notes", { body: { body: "hi" } });
    expect(res.status).toBe(403);
  });
});

describe("CSRF", () => {
  it("refuses a cookie-authenticated mutation without X-CSRF-Token", async () => {
    const s = await sessionFor("admin");
    const res = await asSession(s, "/api/sites", { body: { name: "x" }, csrf: false });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("forbidden");
  });

  it("refuses a cookie-authenticated mutation with another session's token", async () => {
    const s = await sessionFor("admin");
    const other = await sessionFor("admin");
    const res = await asSession({ cookie: s.cookie, csrfToken: other.csrfToken }, "/api/sites", {
      body: { name: "x" },
    });
    expect(res.status).toBe(403);
  });

  it("refuses a cookie-authenticated mutation from a foreign Origin even with the token", async () => {
    const s = await sessionFor("admin");
    const res = await asSession(s, "/api/sites", { body: { name: "x" }, headers: { Origin: "https://evil.example" } });
    expect(res.status).toBe(403);
  });

  it("accepts a mutation with the token from our own origin", async () => {
    const s = await sessionFor("admin");
    const res = await asSession(s, "/api/sites", { body: { name: "Mine" }, headers: { Origin: BASE } });
    expect(res.status).toBe(201);
  });

  it("does not ask for a CSRF token on reads", async () => {
    const s = await sessionFor("viewer");
    expect((await asSession(s, "/api/sites", { csrf: false })).status).toBe(200);
  });

  it("does not ask bearer-token callers for a CSRF token", async () => {
    const res = await SELF.fetch(`${BASE}/api/sites`, {
      method: "POST",
      headers: { Authorization: "Bearer test-admin-token-0123456789", Origin: "https://elsewhere.example" },
      body: JSON.stringify({ name: "Scripted" }),
    });
    expect(res.status).toBe(201);
  });
});

describe("the login exemption", () => {
  it("exempts exactly POST /api/auth/login from authentication", async () => {
    for (const [method, path] of [
      ["GET", "/api/auth/login"],
      ["POST", "/api/auth/login/"],
      ["POST", "/api/auth/login/x"],
      ["POST", "/api/auth/loginx"],
      ["POST", "/api/auth/logout"],
    ]) {
      const res = await SELF.fetch(`${BASE}${path}`, { method, body: method === "GET" ? undefined : "{}" });
      expect(res.status, `${method} ${path}`).toBe(401);
    }
  });
});
