import { env, SELF } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { createSession } from "../../worker/auth/sessions";
import { createDb } from "../../worker/db";
import type { Role } from "../../worker/env";
import { BASE } from "../helpers/api";
import { putSlot, unique } from "./seed";

/** A signed-in dashboard user of `role`: the session cookie and CSRF token its requests carry. */
async function signedIn(role: Role) {
  const id = unique("usr");
  const now = Date.now();
  await env.DB.prepare(
    `INSERT INTO users (id, email, role, password_hash, password_salt, created_at, updated_at)
     VALUES (?, ?, ?, 'unused', 'unused', ?, ?)`,
  )
    .bind(id, `${id}@example.com`, role, now, now)
    .run();
  const { token, csrfToken } = await createSession(createDb(env.DB), id, now);
  return (path: string, method = "GET", body?: unknown) =>
    SELF.fetch(`${BASE}${path}`, {
      method,
      headers: {
        Cookie: `tessera_session=${token}`,
        "X-CSRF-Token": csrfToken,
        Origin: BASE,
        "Content-Type": "application/json",
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
}

const key = unique("roles");

beforeAll(async () => {
  await putSlot(key, { default: "x" });
});

describe("slot roles", () => {
  it("lets a viewer read slots, stats and previews", async () => {
    const as = await signedIn("viewer");
    expect((await as("/api/slots")).status).toBe(200);
    expect((await as(`/api/slots/${key}`)).status).toBe(200);
    expect((await as(`/api/slots/${key}/stats`)).status).toBe(200);
  });

  it("refuses a viewer's writes with 403", async () => {
    const as = await signedIn("viewer");
    expect((await as(`/api/slots/${key}`, "PUT", { default: "changed" })).status).toBe(403);
    expect((await as(`/api/slots/${key}`, "DELETE")).status).toBe(403);
  });

  it("lets a marketer create, replace and delete a slot", async () => {
    const as = await signedIn("marketer");
    const own = unique("mkt");
    expect((await as(`/api/slots/${own}`, "PUT", { default: "a" })).status).toBe(201);
    expect((await as(`/api/slots/${own}`, "PUT", { default: "b" })).status).toBe(200);
    expect((await as(`/api/slots/${own}`, "DELETE")).status).toBe(204);
  });
});
