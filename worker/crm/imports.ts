/**
 * `/api/imports`: contacts from another CRM's CSV export. Preview (header, first rows, suggested
 * mapping, row errors), then import: every valid row becomes a trusted `identify` event with
 * messageId `<import id>:<row>`, so the pipeline stitches rows like any event (an email or user id
 * already known lands on that profile) and a re-sent import is deduplicated by messageId.
 *
 * Row numbers are CSV record numbers with the header as row 1 (the first data row is row 2, as a
 * spreadsheet shows it when no cell spans lines; blank lines are skipped).
 *
 * The report, once the pipeline has stored every accepted row's event:
 * - `created`: new contacts — for each profile that rows landed on (followed to its survivor)
 *   and that held no identifier from before the import started, its first row counts as created;
 * - `merged`: every other processed row — it updated a contact that existed before the import,
 *   or repeated a contact an earlier row of the same file created (dedupe on email / user id);
 * - `rejected`: rows refused at validation (with the reason); `pending`: accepted rows whose
 *   event is not stored yet. The report is frozen in `imports` when `pending` reaches 0.
 */
import { desc, eq } from "drizzle-orm";
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import { requireRole } from "../auth";
import type { Db } from "../db";
import { imports } from "../db/schema";
import type { AppEnv } from "../env";
import { defaultPolicy, isBlocked, normalizeIdentifier } from "../identity/policy";
import { ApiError } from "../lib/errors";
import { sha256Hex } from "../lib/ids";
import { describe } from "../lib/openapi";
import { idParam, jsonBody, params } from "../lib/validate";
import type { NormalizedEvent } from "../wire/queue";
import { CsvError, parseCsv } from "./csv-parse";
import { contactSite, identifyEvent, sendEvents } from "./events";

/** Names that must use their own target (they are identifiers or denormalised columns) or are unsafe. */
const forbiddenTraits = new Set([
  "email",
  "phone",
  "name",
  "user_id",
  "userid",
  "__proto__",
  "constructor",
  "prototype",
]);

const targetSchema = z.union([
  z.enum(["email", "user_id", "phone", "name", "ignore"]),
  z
    .string()
    .regex(/^trait:[A-Za-z_][A-Za-z0-9_]{0,63}$/, 'A target is email, user_id, phone, name, ignore or "trait:<name>"')
    .refine((t) => !forbiddenTraits.has(t.slice(6).toLowerCase()), "Use the email, phone, name or user_id target"),
]);
export type Target = z.infer<typeof targetSchema>;

export const mappingSchema = z
  .record(z.string().max(200), targetSchema)
  .refine((m) => Object.keys(m).length <= 100, "At most 100 columns")
  .superRefine((m, ctx) => {
    const seen = new Set<string>();
    for (const [column, target] of Object.entries(m)) {
      if (target === "ignore") continue;
      if (seen.has(target)) ctx.addIssue({ code: "custom", path: [column], message: `${target} is mapped twice` });
      seen.add(target);
    }
  });
export type Mapping = z.infer<typeof mappingSchema>;

const csvField = z.string().min(1).max(5_000_000, "The file is larger than 5 MB");

export const previewBody = z.object({ csv: csvField, mapping: mappingSchema.optional() });
export const importBody = z.object({
  csv: csvField,
  mapping: mappingSchema,
  siteId: z.string().min(1).max(100).optional(),
});

const rowError = z.object({ row: z.number().int(), reason: z.string() });
export const previewSchema = z.object({
  header: z.array(z.string()),
  rows: z.array(z.array(z.string())),
  totalRows: z.number().int(),
  mapping: z.record(z.string(), z.string()),
  suggestedMapping: z.record(z.string(), z.string()),
  validRows: z.number().int(),
  errorCount: z.number().int(),
  errors: z.array(rowError),
});
export const importResultSchema = z.object({
  importId: z.string(),
  accepted: z.number().int(),
  rejected: z.array(rowError),
  rejectedCount: z.number().int(),
});
export const reportSchema = z.object({
  id: z.string(),
  siteId: z.string(),
  status: z.enum(["processing", "done"]),
  totalRows: z.number().int(),
  accepted: z.number().int(),
  created: z.number().int(),
  merged: z.number().int(),
  pending: z.number().int(),
  rejected: z.number().int(),
  rejectedRows: z.array(rowError),
  createdAt: z.string(),
  completedAt: z.string().nullable(),
});

const REJECTED_KEPT = 1000;
const PREVIEW_ROWS = 20;
const PREVIEW_ERRORS = 100;

const squash = (header: string) => header.toLowerCase().replace(/[^a-z0-9]/g, "");

/**
 * A column's entry in a lookup table, own properties only: CSV headers are attacker-controlled,
 * and a header named `constructor` or `__proto__` must not reach Object.prototype.
 */
const own = <T>(table: Record<string, T>, key: string): T | undefined =>
  Object.hasOwn(table, key) ? table[key] : undefined;
const known: Record<string, Target> = {
  email: "email",
  emailaddress: "email",
  mail: "email",
  userid: "user_id",
  phone: "phone",
  phonenumber: "phone",
  mobile: "phone",
  mobilephone: "phone",
  tel: "phone",
  telephone: "phone",
  name: "name",
  fullname: "name",
  contactname: "name",
};

/** A mapping guessed from header names: known identifiers and name, every other column a trait. */
export function suggestMapping(header: string[]): Mapping {
  const used = new Set<string>();
  // No prototype: a column named `__proto__` becomes an ordinary key.
  const mapping: Mapping = Object.create(null);
  for (const column of header) {
    const trait = column
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "_")
      .replace(/^_+|_+$/g, "")
      .slice(0, 64);
    let target: Target =
      own(known, squash(column)) ??
      (trait && targetSchema.safeParse(`trait:${trait}`).success ? `trait:${trait}` : "ignore");
    if (target !== "ignore" && used.has(target)) target = "ignore";
    used.add(target);
    mapping[column] = target;
  }
  return mapping;
}

/** The header must name each column once, so that a mapping is unambiguous. */
function checkHeader(header: string[]): void {
  const seen = new Set<string>();
  header.forEach((name, i) => {
    if (name.trim() === "") throw badCsv(`column ${i + 1} has no name in the header row`);
    if (seen.has(name)) throw badCsv(`the header names "${name.slice(0, 100)}" twice`);
    seen.add(name);
  });
}

const badCsv = (message: string) =>
  new ApiError("validation_failed", "Invalid CSV", { details: [{ path: "csv", message }] });

function parseFile(csv: string, mapping: Mapping | undefined): { header: string[]; rows: string[][] } {
  let records: string[][];
  try {
    records = parseCsv(csv);
  } catch (err) {
    if (err instanceof CsvError) throw badCsv(err.message);
    throw err;
  }
  const [header, ...rows] = records;
  if (!header) throw badCsv("the file is empty");
  checkHeader(header);
  const unknown = Object.keys(mapping ?? {}).filter((column) => !header.includes(column));
  if (unknown.length > 0) {
    throw new ApiError("validation_failed", "The mapping names columns the file does not have", {
      details: unknown.slice(0, 20).map((column) => ({ path: `mapping.${column}`, message: "No such column" })),
    });
  }
  return { header, rows };
}

export type RowResult =
  | { ok: true; userId: string | null; traits: Record<string, string> }
  | { ok: false; reason: string };

/** Validates one record under a mapping and turns it into identify fields. */
export function mapRow(header: string[], record: string[], mapping: Mapping): RowResult {
  if (record.length !== header.length) {
    return { ok: false, reason: `expected ${header.length} columns, found ${record.length}` };
  }
  const traits: Record<string, string> = Object.create(null);
  let userId: string | null = null;
  for (let i = 0; i < header.length; i++) {
    const target = own(mapping, header[i]) ?? "ignore";
    const value = record[i].trim();
    if (target === "ignore" || value === "") continue;
    const column = header[i].slice(0, 50);
    if (target === "email") {
      const email = normalizeIdentifier("email", value);
      if (!email) return { ok: false, reason: `${column}: not an email address` };
      traits.email = email;
    } else if (target === "phone") {
      const phone = normalizeIdentifier("phone", value);
      if (!phone) return { ok: false, reason: `${column}: not a phone number` };
      traits.phone = phone;
    } else if (target === "user_id") {
      if (value.length > 100) return { ok: false, reason: `${column}: a user id is at most 100 characters` };
      if (isBlocked(defaultPolicy, value))
        return { ok: false, reason: `${column}: "${value}" is a placeholder, not a user id` };
      userId = value;
    } else if (target === "name") {
      if (value.length > 200) return { ok: false, reason: `${column}: a name is at most 200 characters` };
      traits.name = value;
    } else {
      traits[target.slice(6)] = value;
    }
  }
  if (!userId && !traits.email && !traits.phone) {
    return { ok: false, reason: "no identifier: map a column to email, user_id or phone and fill it" };
  }
  return { ok: true, userId, traits: { ...traits } };
}

/** A stable id for (site, mapping, file): sending the same import twice yields the same id. */
export async function importIdOf(siteId: string, mapping: Mapping, csv: string): Promise<string> {
  const canonical = JSON.stringify(Object.entries(mapping).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return `imp_${(await sha256Hex(`${siteId}\n${canonical}\n${csv}`)).slice(0, 32)}`;
}

/** Counts created / merged rows from what the pipeline stored (see the module comment). */
export async function importOutcome(
  d1: D1Database,
  imp: { id: string; siteId: string; createdAt: number },
): Promise<{ processed: number; created: number; merged: number }> {
  // messageIds `<id>:<row>` sort between `<id>:` and `<id>;` (';' follows ':'): one range scan.
  const { results } = await d1
    .prepare(
      `WITH RECURSIVE landed(mid, pid, depth) AS (
         SELECT message_id, profile_id, 0 FROM events WHERE site_id = ?1 AND message_id > ?2 AND message_id < ?3
         UNION ALL
         SELECT l.mid, p.merged_into, l.depth + 1 FROM landed l JOIN profiles p ON p.id = l.pid
         WHERE p.merged_into IS NOT NULL AND l.depth < 32),
       final AS (
         SELECT mid, pid FROM landed l
         WHERE NOT EXISTS (SELECT 1 FROM profiles p WHERE p.id = l.pid AND p.merged_into IS NOT NULL))
       SELECT f.mid, f.pid,
         EXISTS (SELECT 1 FROM identities i WHERE i.profile_id = f.pid AND i.created_at < ?4) AS existed
       FROM final f`,
    )
    .bind(imp.siteId, `${imp.id}:`, `${imp.id};`, imp.createdAt)
    .all<{ mid: string; pid: string; existed: number }>();
  const firstRowOf = new Map<string, number>();
  let merged = 0;
  for (const r of results) {
    if (r.existed) {
      merged++;
      continue;
    }
    const row = Number(r.mid.slice(imp.id.length + 1));
    const first = firstRowOf.get(r.pid);
    if (first === undefined) firstRowOf.set(r.pid, row);
    else merged++;
  }
  return { processed: results.length, created: firstRowOf.size, merged };
}

type ImportRow = typeof imports.$inferSelect;

export async function importReport(db: Db, d1: D1Database, imp: ImportRow, now: number) {
  let { created, merged, completedAt } = imp;
  let pending = 0;
  if (completedAt === null) {
    const outcome = await importOutcome(d1, imp);
    pending = Math.max(0, imp.accepted - outcome.processed);
    created = outcome.created;
    merged = outcome.merged;
    if (pending === 0) {
      completedAt = now;
      await db.update(imports).set({ created, merged, completedAt }).where(eq(imports.id, imp.id));
    }
  }
  return {
    id: imp.id,
    siteId: imp.siteId,
    status: completedAt === null ? ("processing" as const) : ("done" as const),
    totalRows: imp.totalRows,
    accepted: imp.accepted,
    created: created ?? 0,
    merged: merged ?? 0,
    pending,
    rejected: imp.rejectedCount,
    rejectedRows: imp.rejected,
    createdAt: new Date(imp.createdAt).toISOString(),
    completedAt: completedAt === null ? null : new Date(completedAt).toISOString(),
  } satisfies z.infer<typeof reportSchema>;
}

const importBodyLimit = bodyLimit({
  // 5 MB of CSV, JSON-escaped, plus the mapping.
  maxSize: 12 * 1024 * 1024,
  onError: () => {
    throw new ApiError("payload_too_large", "The import is larger than 5 MB of CSV");
  },
});

export const importsApi = new Hono<AppEnv>()
  .use(requireRole("marketer"))
  .get("/", async (c) => {
    const rows = await c.var.db.select().from(imports).orderBy(desc(imports.createdAt)).limit(50).all();
    return c.json({
      items: rows.map((r) => ({
        id: r.id,
        siteId: r.siteId,
        totalRows: r.totalRows,
        accepted: r.accepted,
        rejected: r.rejectedCount,
        createdAt: new Date(r.createdAt).toISOString(),
        completedAt: r.completedAt === null ? null : new Date(r.completedAt).toISOString(),
      })),
    });
  })
  .post("/preview", importBodyLimit, jsonBody(previewBody), async (c) => {
    const input = c.req.valid("json");
    const { header, rows } = parseFile(input.csv, input.mapping);
    const suggestedMapping = suggestMapping(header);
    const mapping = input.mapping ?? suggestedMapping;
    const errors: { row: number; reason: string }[] = [];
    let errorCount = 0;
    rows.forEach((record, i) => {
      const result = mapRow(header, record, mapping);
      if (result.ok) return;
      errorCount++;
      if (errors.length < PREVIEW_ERRORS) errors.push({ row: i + 2, reason: result.reason });
    });
    return c.json({
      header,
      rows: rows.slice(0, PREVIEW_ROWS),
      totalRows: rows.length,
      mapping,
      suggestedMapping,
      validRows: rows.length - errorCount,
      errorCount,
      errors,
    } satisfies z.infer<typeof previewSchema>);
  })
  .post("/", importBodyLimit, jsonBody(importBody), async (c) => {
    const input = c.req.valid("json");
    const { header, rows } = parseFile(input.csv, input.mapping);
    const now = Date.now();
    const siteId = await contactSite(c.var.db, input.siteId, now);
    const id = await importIdOf(siteId, input.mapping, input.csv);

    const valid: { row: number; userId: string | null; traits: Record<string, string> }[] = [];
    const rejected: { row: number; reason: string }[] = [];
    let rejectedCount = 0;
    rows.forEach((record, i) => {
      const result = mapRow(header, record, input.mapping);
      if (result.ok) valid.push({ row: i + 2, userId: result.userId, traits: result.traits });
      else if (rejectedCount++ < REJECTED_KEPT) rejected.push({ row: i + 2, reason: result.reason });
    });

    // The first attempt's row wins: a re-sent import keeps its id, time and report.
    await c.var.db
      .insert(imports)
      .values({
        id,
        siteId,
        createdBy: c.var.principal.userId ?? null,
        totalRows: rows.length,
        accepted: valid.length,
        rejectedCount,
        rejected,
        createdAt: now,
      })
      .onConflictDoNothing();
    const stored = await c.var.db.select().from(imports).where(eq(imports.id, id)).get();
    const at = stored?.createdAt ?? now;
    const events: NormalizedEvent[] = valid.map((v) =>
      identifyEvent({
        messageId: `${id}:${v.row}`,
        userId: v.userId,
        traits: v.traits,
        source: { type: "csv_import", importId: id },
        timestamp: at,
        receivedAt: now,
      }),
    );
    // Always (re-)sent: the pipeline drops messageIds it already stored, so a retry after a
    // partial failure completes the import without duplicating anything.
    if (events.length > 0) await sendEvents(c.env, siteId, events);
    return c.json(
      { importId: id, accepted: valid.length, rejected, rejectedCount } satisfies z.infer<typeof importResultSchema>,
      202,
    );
  })
  .get("/:id", params(idParam), async (c) => {
    const imp = await c.var.db
      .select()
      .from(imports)
      .where(eq(imports.id, c.req.valid("param").id))
      .get();
    if (!imp) throw new ApiError("not_found", "Import not found");
    return c.json(await importReport(c.var.db, c.env.DB, imp, Date.now()));
  });

describe({
  method: "post",
  path: "/api/imports/preview",
  tag: "Imports",
  summary:
    "Parse a CSV (≤ 5 MB, ≤ 50,000 rows, ≤ 100 columns, ≤ 10,000 chars per cell) and check it under a mapping " +
    "(default: the suggested one): header, first 20 rows, row errors (first 100; row 2 = first data row) (marketer)",
  body: previewBody,
  responses: { 200: previewSchema },
});
describe({
  method: "post",
  path: "/api/imports",
  tag: "Imports",
  summary:
    "Import contacts (marketer): valid rows are queued as identify events (messageId `<importId>:<row>`) and stitched " +
    "by the pipeline; the same file, mapping and site give the same importId and are deduplicated",
  body: importBody,
  responses: { 202: importResultSchema },
});
describe({
  method: "get",
  path: "/api/imports",
  tag: "Imports",
  summary: "The 50 latest imports (marketer)",
});
describe({
  method: "get",
  path: "/api/imports/{id}",
  tag: "Imports",
  summary:
    "Import report (marketer): created (new contacts), merged (rows that landed on an existing contact or repeated an " +
    "earlier row), rejected, pending (not processed yet); status done once pending is 0",
  responses: { 200: reportSchema },
});
