/**
 * Notes and tasks on a contact. They are written on the live profile; reads also include those
 * of profiles merged into it (a merge moves them, but an id set keeps older data visible too).
 */
import { eq } from "drizzle-orm";
import { Hono } from "hono";
import { z } from "zod";
import { hasRole, requireRole } from "../auth";
import type { Db } from "../db";
import { notes, tasks, users } from "../db/schema";
import type { AppEnv } from "../env";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { describe } from "../lib/openapi";
import { idParam, jsonBody, params } from "../lib/validate";
import { resolveContactId } from "./contact";

export const noteCreate = z.object({ body: z.string().trim().min(1).max(10_000) });

const isoTime = z.iso
  .datetime({ offset: true })
  .max(40)
  .transform((v) => Date.parse(v));

export const taskCreate = z.object({
  title: z.string().trim().min(1).max(500),
  dueAt: isoTime.nullable().optional(),
});
export const taskUpdate = z
  .object({ title: taskCreate.shape.title, dueAt: isoTime.nullable(), done: z.boolean() })
  .partial()
  .refine((v) => Object.keys(v).length > 0, "Nothing to update");

export const noteSchema = z.object({
  id: z.string(),
  profileId: z.string(),
  body: z.string(),
  authorId: z.string().nullable(),
  author: z.object({ id: z.string(), email: z.string(), name: z.string().nullable() }).nullable(),
  createdAt: z.string(),
});
export const taskSchema = z.object({
  id: z.string(),
  profileId: z.string(),
  title: z.string(),
  dueAt: z.string().nullable(),
  done: z.boolean(),
  createdBy: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
});

type NoteRow = typeof notes.$inferSelect;
type TaskRow = typeof tasks.$inferSelect;
type Author = { id: string; email: string; name: string | null } | null;

const noteJson = (n: NoteRow, author: Author): z.infer<typeof noteSchema> => ({
  id: n.id,
  profileId: n.profileId,
  body: n.body,
  authorId: n.authorId,
  author,
  createdAt: new Date(n.createdAt).toISOString(),
});

const taskJson = (t: TaskRow): z.infer<typeof taskSchema> => ({
  id: t.id,
  profileId: t.profileId,
  title: t.title,
  dueAt: t.dueAt === null ? null : new Date(t.dueAt).toISOString(),
  done: t.done,
  createdBy: t.createdBy,
  createdAt: new Date(t.createdAt).toISOString(),
  updatedAt: new Date(t.updatedAt).toISOString(),
});

/** Ids whose notes and tasks a contact shows: itself and the profiles merged into it. */
const familySql = `WITH RECURSIVE family(id, depth) AS (
  SELECT ?1, 0 UNION SELECT p.id, f.depth + 1 FROM profiles p JOIN family f ON p.merged_into = f.id WHERE f.depth < 32)`;

/** Most notes / tasks a contact page shows. */
const LIST_MAX = 500;

export async function contactNotes(d1: D1Database, profileId: string) {
  const { results } = await d1
    .prepare(
      `${familySql}
       SELECT n.id, n.profile_id, n.author_id, n.body, n.created_at, u.email AS author_email, u.name AS author_name
       FROM notes n LEFT JOIN users u ON u.id = n.author_id
       WHERE n.profile_id IN (SELECT id FROM family)
       ORDER BY n.created_at DESC, n.id DESC LIMIT ${LIST_MAX}`,
    )
    .bind(profileId)
    .all<{
      id: string;
      profile_id: string;
      author_id: string | null;
      body: string;
      created_at: number;
      author_email: string | null;
      author_name: string | null;
    }>();
  return results.map((r) =>
    noteJson(
      { id: r.id, profileId: r.profile_id, authorId: r.author_id, body: r.body, createdAt: r.created_at },
      r.author_id && r.author_email ? { id: r.author_id, email: r.author_email, name: r.author_name } : null,
    ),
  );
}

export async function contactTasks(d1: D1Database, profileId: string) {
  // Open tasks first, the soonest due first, undated after dated.
  const { results } = await d1
    .prepare(
      `${familySql}
       SELECT id, profile_id, title, due_at, done, created_by, created_at, updated_at FROM tasks
       WHERE profile_id IN (SELECT id FROM family)
       ORDER BY done, due_at IS NULL, due_at, created_at LIMIT ${LIST_MAX}`,
    )
    .bind(profileId)
    .all<{
      id: string;
      profile_id: string;
      title: string;
      due_at: number | null;
      done: number;
      created_by: string | null;
      created_at: number;
      updated_at: number;
    }>();
  return results.map((r) =>
    taskJson({
      id: r.id,
      profileId: r.profile_id,
      title: r.title,
      dueAt: r.due_at,
      done: r.done === 1,
      createdBy: r.created_by,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    }),
  );
}

async function authorOf(db: Db, userId: string | undefined): Promise<Author> {
  if (!userId) return null;
  return (
    (await db
      .select({ id: users.id, email: users.email, name: users.name })
      .from(users)
      .where(eq(users.id, userId))
      .get()) ?? null
  );
}

async function getTask(db: Db, id: string): Promise<TaskRow> {
  const task = await db.select().from(tasks).where(eq(tasks.id, id)).get();
  if (!task) throw new ApiError("not_found", "Task not found");
  return task;
}

/** Routes under `/api/contacts/:id/…`. */
export const contactNotesApi = new Hono<AppEnv>()
  .get("/:id/notes", params(idParam), async (c) => {
    const id = await resolveContactId(c.env.DB, c.req.valid("param").id);
    return c.json({ items: await contactNotes(c.env.DB, id) });
  })
  .post("/:id/notes", requireRole("marketer"), params(idParam), jsonBody(noteCreate), async (c) => {
    const id = await resolveContactId(c.env.DB, c.req.valid("param").id);
    const userId = c.var.principal.userId;
    const row: NoteRow = {
      id: newId("note"),
      profileId: id,
      authorId: userId ?? null,
      body: c.req.valid("json").body,
      createdAt: Date.now(),
    };
    await c.var.db.insert(notes).values(row);
    return c.json(noteJson(row, await authorOf(c.var.db, userId)), 201);
  })
  .get("/:id/tasks", params(idParam), async (c) => {
    const id = await resolveContactId(c.env.DB, c.req.valid("param").id);
    return c.json({ items: await contactTasks(c.env.DB, id) });
  })
  .post("/:id/tasks", requireRole("marketer"), params(idParam), jsonBody(taskCreate), async (c) => {
    const id = await resolveContactId(c.env.DB, c.req.valid("param").id);
    const input = c.req.valid("json");
    const now = Date.now();
    const row: TaskRow = {
      id: newId("task"),
      profileId: id,
      title: input.title,
      dueAt: input.dueAt ?? null,
      done: false,
      createdBy: c.var.principal.userId ?? null,
      createdAt: now,
      updatedAt: now,
    };
    await c.var.db.insert(tasks).values(row);
    return c.json(taskJson(row), 201);
  });

/** `/api/notes/:id`. */
export const notesApi = new Hono<AppEnv>().delete("/:id", requireRole("marketer"), params(idParam), async (c) => {
  const { id } = c.req.valid("param");
  const note = await c.var.db.select().from(notes).where(eq(notes.id, id)).get();
  if (!note) throw new ApiError("not_found", "Note not found");
  const principal = c.var.principal;
  if (!hasRole(principal, "admin") && note.authorId !== principal.userId) {
    throw new ApiError("forbidden", "Only the note's author or an admin can delete it");
  }
  await c.var.db.delete(notes).where(eq(notes.id, id));
  return c.body(null, 204);
});

/** `/api/tasks/:id`. */
export const tasksApi = new Hono<AppEnv>()
  .patch("/:id", requireRole("marketer"), params(idParam), jsonBody(taskUpdate), async (c) => {
    const { id } = c.req.valid("param");
    await getTask(c.var.db, id);
    const updated = await c.var.db
      .update(tasks)
      .set({ ...c.req.valid("json"), updatedAt: Date.now() })
      .where(eq(tasks.id, id))
      .returning()
      .get();
    return c.json(taskJson(updated));
  })
  .delete("/:id", requireRole("marketer"), params(idParam), async (c) => {
    const { id } = c.req.valid("param");
    await getTask(c.var.db, id);
    await c.var.db.delete(tasks).where(eq(tasks.id, id));
    return c.body(null, 204);
  });

const notesList = z.object({ items: z.array(noteSchema) });
const tasksList = z.object({ items: z.array(taskSchema) });
describe({
  method: "get",
  path: "/api/contacts/{id}/notes",
  tag: "Notes",
  summary: "A contact's notes, newest first (≤ 500)",
  responses: { 200: notesList },
});
describe({
  method: "post",
  path: "/api/contacts/{id}/notes",
  tag: "Notes",
  summary: "Add a note (marketer); the author is the signed-in user",
  body: noteCreate,
  responses: { 201: noteSchema },
});
describe({
  method: "delete",
  path: "/api/notes/{id}",
  tag: "Notes",
  summary: "Delete a note (its author, or an admin)",
  responses: { 204: "Deleted" },
});
describe({
  method: "get",
  path: "/api/contacts/{id}/tasks",
  tag: "Tasks",
  summary: "A contact's tasks: open first, soonest due first (≤ 500)",
  responses: { 200: tasksList },
});
describe({
  method: "post",
  path: "/api/contacts/{id}/tasks",
  tag: "Tasks",
  summary: "Add a task (marketer); dueAt is an ISO date-time",
  body: taskCreate,
  responses: { 201: taskSchema },
});
describe({
  method: "patch",
  path: "/api/tasks/{id}",
  tag: "Tasks",
  summary: "Edit a task: title, dueAt (null clears), done (marketer)",
  body: taskUpdate,
  responses: { 200: taskSchema },
});
describe({
  method: "delete",
  path: "/api/tasks/{id}",
  tag: "Tasks",
  summary: "Delete a task (marketer)",
  responses: { 204: "Deleted" },
});
