import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { importResultSchema, mapRow, previewSchema, reportSchema, suggestMapping } from "../../worker/crm/imports";
import { api, asSession, seedProfile, sessionFor } from "../helpers/api";

let n = 0;
const unique = () => `${Date.now().toString(36)}${++n}`;

describe("import mapping", () => {
  it("suggests identifiers and name from common header names, traits for the rest", () => {
    expect(
      suggestMapping(["E-mail Address", "User ID", "Mobile", "Full Name", "Company Size", "!!!", "email"]),
    ).toEqual({
      "E-mail Address": "email",
      "User ID": "user_id",
      Mobile: "phone",
      "Full Name": "name",
      "Company Size": "trait:company_size",
      "!!!": "ignore",
      email: "ignore",
    });
  });

  it("maps columns named like Object.prototype properties without reaching the prototype", () => {
    const header = ["email", "constructor", "__proto__", "toString"];
    const mapping = suggestMapping(header);
    expect(Object.keys(mapping)).toEqual(header);
    // `constructor` is never a trait name (as at ingest); the others are ordinary columns.
    expect(mapping.constructor).toBe("ignore");
    expect(mapRow(header, ["a@b.example", "x", "y", "z"], mapping)).toEqual({
      ok: true,
      userId: null,
      traits: { email: "a@b.example", proto: "y", tostring: "z" },
    });
    expect(({} as Record<string, unknown>).proto).toBeUndefined();
  });

  it("turns a row into normalised identifiers and traits", () => {
    const header = ["Email", "Phone", "Plan", "Notes"];
    const mapping = { Email: "email", Phone: "phone", Plan: "trait:plan", Notes: "ignore" } as const;
    expect(mapRow(header, [" Ann@X.Example ", "+44 20 7946 0958", "pro", "secret"], mapping)).toEqual({
      ok: true,
      userId: null,
      traits: { email: "ann@x.example", phone: "+442079460958", plan: "pro" },
    });
  });

  it("rejects rows with a bad email, a placeholder user id, no identifier or the wrong width", () => {
    const header = ["email", "uid", "plan"];
    const mapping = { email: "email", uid: "user_id", plan: "trait:plan" } as const;
    expect(mapRow(header, ["nope", "", ""], mapping)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/email/),
    });
    expect(mapRow(header, ["", "null", ""], mapping)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/placeholder/),
    });
    expect(mapRow(header, ["", "", "pro"], mapping)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/no identifier/),
    });
    expect(mapRow(header, ["a@x.example"], mapping)).toMatchObject({
      ok: false,
      reason: "expected 3 columns, found 1",
    });
  });
});

describe("import preview", () => {
  it("answers the header, the first 20 rows, the suggested mapping and row errors", async () => {
    const lines = [
      "email,name,plan",
      ...Array.from({ length: 25 }, (_, i) => `p${i}@x.example,P ${i},pro`),
      "broken,,",
      "a@x.example,A",
    ];
    const res = await api("/api/imports/preview", { body: { csv: lines.join("\r\n") } });
    expect(res.status).toBe(200);
    const preview = previewSchema.parse(await res.json());
    expect(preview.header).toEqual(["email", "name", "plan"]);
    expect(preview.rows).toHaveLength(20);
    expect(preview.totalRows).toBe(27);
    expect(preview.mapping).toEqual({ email: "email", name: "name", plan: "trait:plan" });
    expect(preview.validRows).toBe(25);
    expect(preview.errors).toEqual([
      { row: 27, reason: "email: not an email address" },
      { row: 28, reason: "expected 3 columns, found 2" },
    ]);
  });

  it("rejects malformed CSV, a duplicate header and a mapping naming unknown columns with 400", async () => {
    for (const body of [
      { csv: 'email\n"open' },
      { csv: "email,email\na,b" },
      { csv: "email\na@x.example", mapping: { mail: "email" } },
      { csv: "email,x\na@x.example,1", mapping: { email: "email", x: "trait:email" } },
      { csv: "email,x\na@x.example,1", mapping: { email: "email", x: "email" } },
    ]) {
      const res = await api("/api/imports/preview", { body });
      expect(res.status, JSON.stringify(body)).toBe(400);
    }
  });

  it("is not available to viewers", async () => {
    const viewer = await sessionFor("viewer");
    expect((await asSession(viewer, "/api/imports/preview", { body: { csv: "email\na@x.example" } })).status).toBe(403);
  });
});

describe("import", () => {
  const mapping = { email: "email", name: "name", plan: "trait:plan" };

  it("accepts valid rows, reports rejected ones and gives the same id to the same import", async () => {
    const u = unique();
    const csv = `email,name,plan\n${u}a@x.example,A,pro\nbad,B,pro\n${u}c@x.example,C,free\n`;
    const res = await api("/api/imports", { body: { csv, mapping } });
    expect(res.status).toBe(202);
    const result = importResultSchema.parse(await res.json());
    expect(result).toMatchObject({
      accepted: 2,
      rejectedCount: 1,
      rejected: [{ row: 3, reason: "email: not an email address" }],
    });
    const again = importResultSchema.parse(await (await api("/api/imports", { body: { csv, mapping } })).json());
    expect(again.importId).toBe(result.importId);
    const report = reportSchema.parse(await (await api(`/api/imports/${result.importId}`)).json());
    expect(report).toMatchObject({ status: "processing", accepted: 2, pending: 2, rejected: 1, created: 0, merged: 0 });
  });

  it("reports created and merged rows once the pipeline has stored every row", async () => {
    const u = unique();
    // Rows 2 and 4 are the same new person; row 3 is someone the workspace already knew.
    const known = await seedProfile({ email: `${u}known@x.example` });
    await env.DB.prepare("INSERT INTO identities (type, value, profile_id, created_at) VALUES ('email', ?, ?, 1)")
      .bind(`${u}known@x.example`, known.id)
      .run();
    const csv = `email,name,plan\n${u}new@x.example,N,pro\n${u}known@x.example,K,pro\n${u}new@x.example,N2,team\n`;
    const { importId } = importResultSchema.parse(await (await api("/api/imports", { body: { csv, mapping } })).json());
    const imp = await env.DB.prepare("SELECT site_id, created_at FROM imports WHERE id = ?")
      .bind(importId)
      .first<{ site_id: string; created_at: number }>();
    if (!imp) throw new Error("import row missing");

    // What the pipeline would store: a new profile for row 2 (which row 4 then lands on), row 3 on the known one.
    const fresh = await seedProfile();
    const landed: [number, string][] = [
      [2, fresh.id],
      [3, known.id],
    ];
    const store = (row: number, profileId: string) =>
      env.DB.prepare(
        "INSERT INTO events (site_id, message_id, profile_id, type, timestamp, received_at) VALUES (?, ?, ?, 'identify', ?, ?)",
      ).bind(imp.site_id, `${importId}:${row}`, profileId, imp.created_at, imp.created_at);
    await env.DB.batch([
      ...landed.map(([row, id]) => store(row, id)),
      env.DB.prepare(
        "INSERT INTO identities (type, value, profile_id, source_message_id, created_at) VALUES ('email', ?, ?, ?, ?)",
      ).bind(`${u}new@x.example`, fresh.id, `${importId}:2`, imp.created_at + 5),
    ]);
    const partial = reportSchema.parse(await (await api(`/api/imports/${importId}`)).json());
    expect(partial).toMatchObject({ status: "processing", created: 1, merged: 1, pending: 1 });

    await store(4, fresh.id).run();
    const done = reportSchema.parse(await (await api(`/api/imports/${importId}`)).json());
    expect(done).toMatchObject({ status: "done", accepted: 3, created: 1, merged: 2, pending: 0, rejected: 0 });
    expect(done.completedAt).not.toBeNull();
  });

  it("counts a row whose new profile was later merged into a known contact as merged", async () => {
    const u = unique();
    const known = await seedProfile();
    await env.DB.prepare("INSERT INTO identities (type, value, profile_id, created_at) VALUES ('user_id', ?, ?, 1)")
      .bind(`${u}-uid`, known.id)
      .run();
    const csv = `email\n${u}solo@x.example\n`;
    const { importId } = importResultSchema.parse(
      await (await api("/api/imports", { body: { csv, mapping: { email: "email" } } })).json(),
    );
    const imp = await env.DB.prepare("SELECT site_id, created_at FROM imports WHERE id = ?")
      .bind(importId)
      .first<{ site_id: string; created_at: number }>();
    const loser = await seedProfile({ mergedInto: known.id });
    await env.DB.prepare(
      "INSERT INTO events (site_id, message_id, profile_id, type, timestamp, received_at) VALUES (?, ?, ?, 'identify', 0, 0)",
    )
      .bind(imp?.site_id, `${importId}:2`, loser.id)
      .run();
    expect(reportSchema.parse(await (await api(`/api/imports/${importId}`)).json())).toMatchObject({
      created: 0,
      merged: 1,
      status: "done",
    });
  });

  it("answers 404 for an unknown import and for an unknown site", async () => {
    expect((await api("/api/imports/imp_missing")).status).toBe(404);
    expect(
      (
        await api("/api/imports", {
          body: { csv: "email\na@x.example", mapping: { email: "email" }, siteId: "site_nope" },
        })
      ).status,
    ).toBe(404);
  });

  it("refuses a file over 5 MB", async () => {
    const res = await api("/api/imports", {
      body: { csv: `email\n${"a".repeat(5_000_001)}`, mapping: { email: "email" } },
    });
    expect(res.status).toBe(400);
  });
});
