/**
 * `/api/users`: the people who sign in to the dashboard. Admins manage them (the first admin is
 * created with the ADMIN_TOKEN bearer, which acts as admin); every role may list them, because
 * the contacts pages show owners and let marketers pick one.
 */
import { asc, eq } from "drizzle-orm";
import { Hono } from "hono";
import { z } from "zod";
import { requireRole } from "../auth";
import { hashPassword, PASSWORD_MAX, PASSWORD_MIN } from "../auth/password";
import type { Db } from "../db";
import { profiles, sessions, users } from "../db/schema";
import type { AppEnv } from "../env";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { describe } from "../lib/openapi";
import { idParam, jsonBody, params } from "../lib/validate";
import { emailField, roles, userJson, userSchema } from "./model";

export { userJson, userSchema } from "./model";

const password = z
  .string()
  .min(PASSWORD_MIN, `At least ${PASSWORD_MIN} characters`)
  .max(PASSWORD_MAX, `At most ${PASSWORD_MAX} characters`);
const name = z.string().trim().min(1).max(200);

export const userCreate = z.object({
  email: emailField,
  password,
  role: z.enum(roles),
  name: name.optional(),
});

export const userUpdate = z
  .object({ role: z.enum(roles), name: name.nullable(), password })
  .partial()
  .refine((v) => Object.keys(v).length > 0, "Nothing to update");

const userList = z.object({ items: z.array(userSchema) });

export type User = typeof users.$inferSelect;

/** Creates a user; null when the email is taken. */
export async function createUser(db: Db, input: z.output<typeof userCreate>, now: number): Promise<User | null> {
  const { hash, salt } = await hashPassword(input.password);
  const row = await db
    .insert(users)
    .values({
      id: newId("usr"),
      email: input.email,
      name: input.name ?? null,
      role: input.role,
      passwordHash: hash,
      passwordSalt: salt,
      createdAt: now,
      updatedAt: now,
    })
    .onConflictDoNothing()
    .returning()
    .get();
  return row ?? null;
}

async function getUser(db: Db, id: string): Promise<User> {
  const user = await db.select().from(users).where(eq(users.id, id)).get();
  if (!user) throw new ApiError("not_found", "User not found");
  return user;
}

export const usersApi = new Hono<AppEnv>()
  .get("/", async (c) => {
    const rows = await c.var.db.select().from(users).orderBy(asc(users.email)).limit(1000).all();
    return c.json({ items: rows.map(userJson) });
  })
  .post("/", requireRole("admin"), jsonBody(userCreate), async (c) => {
    const user = await createUser(c.var.db, c.req.valid("json"), Date.now());
    if (!user) throw new ApiError("conflict", "A user with this email already exists");
    return c.json(userJson(user), 201);
  })
  .get("/:id", params(idParam), async (c) => c.json(userJson(await getUser(c.var.db, c.req.valid("param").id))))
  .patch("/:id", requireRole("admin"), params(idParam), jsonBody(userUpdate), async (c) => {
    const { id } = c.req.valid("param");
    await getUser(c.var.db, id);
    const patch = c.req.valid("json");
    const now = Date.now();
    const set: Partial<User> = { updatedAt: now };
    if (patch.role !== undefined) set.role = patch.role;
    if (patch.name !== undefined) set.name = patch.name;
    if (patch.password !== undefined) {
      const { hash, salt } = await hashPassword(patch.password);
      Object.assign(set, { passwordHash: hash, passwordSalt: salt, failedLogins: 0, lockedUntil: null });
    }
    const db = c.var.db;
    const update = db.update(users).set(set).where(eq(users.id, id)).returning();
    // A new password signs the user out everywhere (the reason to change it may be a leak).
    const [updated] =
      patch.password !== undefined
        ? (await db.batch([update, db.delete(sessions).where(eq(sessions.userId, id))]))[0]
        : await update;
    return c.json(userJson(updated));
  })
  .delete("/:id", requireRole("admin"), params(idParam), async (c) => {
    const { id } = c.req.valid("param");
    if (c.var.principal.userId === id) throw new ApiError("conflict", "You cannot delete your own account");
    const db = c.var.db;
    await getUser(db, id);
    await db.batch([
      db.delete(sessions).where(eq(sessions.userId, id)),
      // Their contacts become unassigned rather than pointing at nobody.
      db.update(profiles).set({ ownerId: null }).where(eq(profiles.ownerId, id)),
      db.delete(users).where(eq(users.id, id)),
    ]);
    return c.body(null, 204);
  });

describe({
  method: "get",
  path: "/api/users",
  tag: "Users",
  summary: "List dashboard users (any role)",
  responses: { 200: userList },
});
describe({
  method: "post",
  path: "/api/users",
  tag: "Users",
  summary: "Create a dashboard user (admin); 409 when the email is taken",
  body: userCreate,
  responses: { 201: userSchema },
});
describe({
  method: "get",
  path: "/api/users/{id}",
  tag: "Users",
  summary: "Get a dashboard user",
  responses: { 200: userSchema },
});
describe({
  method: "patch",
  path: "/api/users/{id}",
  tag: "Users",
  summary: "Change a user's role, name or password (admin); a new password ends their sessions",
  body: userUpdate,
  responses: { 200: userSchema },
});
describe({
  method: "delete",
  path: "/api/users/{id}",
  tag: "Users",
  summary: "Delete a user (admin): ends their sessions, unassigns their contacts",
  responses: { 204: "Deleted" },
});
