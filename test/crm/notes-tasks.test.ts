import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { noteSchema, taskSchema } from "../../worker/crm/notes";
import { api, asSession, seedProfile, sessionFor } from "../helpers/api";

const items = async <T>(res: Response, schema: { parse(v: unknown): T }) =>
  ((await res.json()) as { items: unknown[] }).items.map((i) => schema.parse(i));

describe("notes", () => {
  it("adds a note with the signed-in user as author and lists it newest first", async () => {
    const marketer = await sessionFor("marketer");
    const contact = await seedProfile();
    const first = await asSession(marketer, `/api/contacts/${contact.id}/notes`, {
      body: { body: "Called, no answer" },
    });
    expect(first.status).toBe(201);
    const note = noteSchema.parse(await first.json());
    expect(note.author).toMatchObject({ id: marketer.user.id, email: marketer.user.email });
    await asSession(marketer, `/api/contacts/${contact.id}/notes`, { body: { body: "Second" } });
    const listed = await items(await asSession(marketer, `/api/contacts/${contact.id}/notes`), noteSchema);
    expect(listed.map((n) => n.body)).toEqual(["Second", "Called, no answer"]);
  });

  it("keeps a note's markup as text", async () => {
    const contact = await seedProfile();
    const body = "<img src=x onerror=alert(1)>";
    const res = await api(`/api/contacts/${contact.id}/notes`, { body: { body } });
    expect(noteSchema.parse(await res.json()).body).toBe(body);
  });

  it("shows the notes of a profile merged into the contact", async () => {
    const survivor = await seedProfile();
    const loser = await seedProfile();
    await api(`/api/contacts/${loser.id}/notes`, { body: { body: "before the merge" } });
    await env.DB.prepare("UPDATE profiles SET merged_into = ? WHERE id = ?").bind(survivor.id, loser.id).run();
    const listed = await items(await api(`/api/contacts/${survivor.id}/notes`), noteSchema);
    expect(listed.map((n) => n.body)).toEqual(["before the merge"]);
  });

  it("rejects empty and oversized notes", async () => {
    const contact = await seedProfile();
    for (const body of ["   ", "x".repeat(10_001)]) {
      expect((await api(`/api/contacts/${contact.id}/notes`, { body: { body } })).status).toBe(400);
    }
  });

  it("lets the author and admins delete a note, not another marketer", async () => {
    const author = await sessionFor("marketer");
    const other = await sessionFor("marketer");
    const contact = await seedProfile();
    const make = async () =>
      noteSchema.parse(
        await (await asSession(author, `/api/contacts/${contact.id}/notes`, { body: { body: "x" } })).json(),
      );
    const a = await make();
    expect((await asSession(other, `/api/notes/${a.id}`, { method: "DELETE" })).status).toBe(403);
    expect((await asSession(author, `/api/notes/${a.id}`, { method: "DELETE" })).status).toBe(204);
    const b = await make();
    expect((await api(`/api/notes/${b.id}`, { method: "DELETE" })).status).toBe(204);
    expect((await api(`/api/notes/${b.id}`, { method: "DELETE" })).status).toBe(404);
  });

  it("does not let a viewer add notes", async () => {
    const viewer = await sessionFor("viewer");
    const contact = await seedProfile();
    expect((await asSession(viewer, `/api/contacts/${contact.id}/notes`, { body: { body: "x" } })).status).toBe(403);
  });

  it("answers 404 for notes of an unknown contact", async () => {
    expect((await api("/api/contacts/prf_missing/notes", { body: { body: "x" } })).status).toBe(404);
  });
});

describe("tasks", () => {
  it("creates, completes, re-dates and deletes a task", async () => {
    const contact = await seedProfile();
    const created = await api(`/api/contacts/${contact.id}/tasks`, {
      body: { title: "Send proposal", dueAt: "2030-01-02T09:00:00+01:00" },
    });
    expect(created.status).toBe(201);
    const task = taskSchema.parse(await created.json());
    expect(task).toMatchObject({ title: "Send proposal", dueAt: "2030-01-02T08:00:00.000Z", done: false });

    const done = await api(`/api/tasks/${task.id}`, { method: "PATCH", body: { done: true, dueAt: null } });
    expect(taskSchema.parse(await done.json())).toMatchObject({ done: true, dueAt: null });

    expect((await api(`/api/tasks/${task.id}`, { method: "DELETE" })).status).toBe(204);
    expect(await items(await api(`/api/contacts/${contact.id}/tasks`), taskSchema)).toEqual([]);
  });

  it("lists open tasks first, soonest due first, undated after dated", async () => {
    const contact = await seedProfile();
    const add = async (title: string, dueAt?: string) =>
      taskSchema.parse(await (await api(`/api/contacts/${contact.id}/tasks`, { body: { title, dueAt } })).json());
    const closed = await add("closed", "2020-01-01T00:00:00Z");
    await api(`/api/tasks/${closed.id}`, { method: "PATCH", body: { done: true } });
    await add("undated");
    await add("later", "2031-01-01T00:00:00Z");
    await add("sooner", "2030-01-01T00:00:00Z");
    const listed = await items(await api(`/api/contacts/${contact.id}/tasks`), taskSchema);
    expect(listed.map((t) => t.title)).toEqual(["sooner", "later", "undated", "closed"]);
  });

  it("rejects a task without a title or with a malformed due date", async () => {
    const contact = await seedProfile();
    for (const body of [{ title: "" }, { title: "x", dueAt: "tomorrow" }, { title: "x".repeat(501) }]) {
      expect((await api(`/api/contacts/${contact.id}/tasks`, { body })).status).toBe(400);
    }
  });

  it("answers 404 for an unknown task", async () => {
    expect((await api("/api/tasks/task_missing", { method: "PATCH", body: { done: true } })).status).toBe(404);
  });
});
