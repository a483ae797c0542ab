import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { userSchema } from "../../worker/users";
import { api, asSession, makeUser, seedProfile, sessionFor, signIn } from "../helpers/api";

const errorCode = async (res: Response) => ((await res.json()) as { error: { code: string } }).error.code;

describe("users API", () => {
  it("lets the ADMIN_TOKEN bootstrap the first admin, who can then sign in", async () => {
    const res = await api("/api/users", {
      body: { email: " Founder@Team.Example ", password: "a long enough password", role: "admin" },
    });
    expect(res.status).toBe(201);
    const user = userSchema.parse(await res.json());
    expect(user.email).toBe("founder@team.example");
    expect(JSON.stringify(user)).not.toMatch(/hash|salt|password/i);
    expect((await signIn("founder@team.example", "a long enough password")).csrfToken).toBeTruthy();
  });

  it("stores a PBKDF2 hash and salt, never the password", async () => {
    const { user, password } = await makeUser("viewer");
    const row = await env.DB.prepare("SELECT password_hash, password_salt FROM users WHERE id = ?")
      .bind(user.id)
      .first<{ password_hash: string; password_salt: string }>();
    expect(row?.password_hash).not.toContain(password);
    expect(atob(row?.password_hash ?? "")).toHaveLength(32);
    expect(atob(row?.password_salt ?? "")).toHaveLength(16);
  });

  it("refuses a second user with the same email with 409", async () => {
    const { user } = await makeUser("viewer");
    const res = await api("/api/users", {
      body: { email: user.email.toUpperCase(), password: "another password", role: "viewer" },
    });
    expect(res.status).toBe(409);
  });

  it("enforces the password length rules", async () => {
    for (const password of ["short", "x".repeat(201)]) {
      const res = await api("/api/users", {
        body: { email: `p${password.length}@team.example`, password, role: "viewer" },
      });
      expect(res.status).toBe(400);
      expect(await errorCode(res)).toBe("validation_failed");
    }
  });

  it("lists users without secrets, to every role", async () => {
    const { user } = await makeUser("marketer");
    const viewer = await sessionFor("viewer");
    const res = await asSession(viewer, "/api/users");
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(JSON.stringify(body)).not.toMatch(/hash|salt/i);
    const { items } = body as { items: unknown[] };
    expect(items.map((u) => userSchema.parse(u).id)).toContain(user.id);
  });

  it("lets only admins create users", async () => {
    const marketer = await sessionFor("marketer");
    const res = await asSession(marketer, "/api/users", {
      body: { email: "sneaky@team.example", password: "a long enough password", role: "admin" },
    });
    expect(res.status).toBe(403);
  });

  it("changes a user's role and name", async () => {
    const { user } = await makeUser("viewer");
    const res = await api(`/api/users/${user.id}`, { method: "PATCH", body: { role: "marketer", name: "Promoted" } });
    expect(res.status).toBe(200);
    expect(userSchema.parse(await res.json())).toMatchObject({ role: "marketer", name: "Promoted" });
  });

  it("signs a user out everywhere when an admin sets a new password", async () => {
    const s = await sessionFor("viewer");
    const res = await api(`/api/users/${s.user.id}`, { method: "PATCH", body: { password: "a brand new password" } });
    expect(res.status).toBe(200);
    expect((await asSession(s, "/api/auth/me")).status).toBe(401);
    expect((await signIn(s.user.email, "a brand new password")).cookie).toMatch(/^tessera_session=/);
  });

  it("deletes a user, ending their sessions and unassigning their contacts", async () => {
    const s = await sessionFor("marketer");
    const contact = await seedProfile({ ownerId: s.user.id });
    expect((await api(`/api/users/${s.user.id}`, { method: "DELETE" })).status).toBe(204);
    expect((await asSession(s, "/api/auth/me")).status).toBe(401);
    expect((await api(`/api/users/${s.user.id}`)).status).toBe(404);
    const row = await env.DB.prepare("SELECT owner_id FROM profiles WHERE id = ?")
      .bind(contact.id)
      .first<{ owner_id: string | null }>();
    expect(row?.owner_id).toBeNull();
  });

  it("does not let an admin delete their own account", async () => {
    const admin = await sessionFor("admin");
    const res = await asSession(admin, `/api/users/${admin.user.id}`, { method: "DELETE" });
    expect(res.status).toBe(409);
  });

  it("answers 404 for an unknown user", async () => {
    expect((await api("/api/users/usr_missing", { method: "PATCH", body: { name: "x" } })).status).toBe(404);
  });
});
