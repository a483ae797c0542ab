/**
 * Slots: named placements with ordered rules, a default, an optional holdout and schedule.
 * Definitions live in D1 (`slots`) and are cached per isolate for a few seconds so that a
 * decision usually costs one D1 read (the visitor's memberships), not two.
 */
import { z } from "zod";
import { ApiError } from "../lib/errors";
import { randomToken } from "../lib/ids";

/** Slot keys appear in page markup (`data-tessera-slot`) and URLs: short, lowercase, no spaces. */
export const slotKey = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, "Slot keys match ^[a-z0-9][a-z0-9_-]{0,63}$");

/** Variant names the decision itself uses; rule ids may not take them. */
export const RESERVED_VARIANTS = ["default", "holdout"] as const;

const MAX_CONTENT_BYTES = 64 * 1024;
const MAX_JSON_DEPTH = 16;
/** Most slots a workspace may hold: the isolate cache and `GET /api/slots` stay small. */
export const MAX_SLOTS = 200;

const encoder = new TextEncoder();

/**
 * The nesting depth of a parsed JSON value, walked iteratively: a deeply nested body must get a
 * 400, not a stack overflow in `JSON.stringify`.
 */
function jsonDepth(value: unknown): number {
  let max = 0;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== "object") continue;
    if (depth > max) max = depth;
    if (max > MAX_JSON_DEPTH) return max;
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
  return max;
}

const objectContent = z
  .record(z.string().max(200), z.unknown())
  .refine((v) => jsonDepth(v) <= MAX_JSON_DEPTH, `JSON content may nest at most ${MAX_JSON_DEPTH} levels`)
  .refine(
    (v) => encoder.encode(JSON.stringify(v)).length <= MAX_CONTENT_BYTES,
    "JSON content is limited to 64 KB once serialised",
  );

/** What a slot shows: HTML/text, or a JSON object handed to the site's code. */
export const slotContent = z.union([
  z
    .string()
    .max(MAX_CONTENT_BYTES)
    .refine((s) => encoder.encode(s).length <= MAX_CONTENT_BYTES, "Content is limited to 64 KB (UTF-8)"),
  objectContent,
]);
export type SlotContent = z.infer<typeof slotContent>;

const ruleId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, "Rule ids match ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
  .refine(
    (id) => !(RESERVED_VARIANTS as readonly string[]).includes(id),
    "Rule ids 'default' and 'holdout' are reserved",
  );

/** A segment key, in the segments module's format (existence is checked on write). */
const segmentKey = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, "Not a segment key");

const isoTime = z.iso.datetime({ offset: true });

export const slotInput = z
  .object({
    default: slotContent,
    rules: z
      .array(z.object({ id: ruleId.optional(), segment: segmentKey, content: slotContent }))
      .max(50)
      .default([]),
    holdout: z.number().min(0).max(100).default(0),
    schedule: z
      .object({ start: isoTime.nullable().optional(), end: isoTime.nullable().optional() })
      .nullable()
      .optional(),
    goalEvent: z.string().trim().min(1).max(200).nullable().optional(),
  })
  .superRefine((slot, ctx) => {
    const seen = new Set<string>();
    slot.rules.forEach((rule, i) => {
      if (rule.id === undefined) return;
      if (seen.has(rule.id)) ctx.addIssue({ code: "custom", path: ["rules", i, "id"], message: "Duplicate rule id" });
      seen.add(rule.id);
    });
    const start = slot.schedule?.start;
    const end = slot.schedule?.end;
    if (start && end && Date.parse(end) <= Date.parse(start)) {
      ctx.addIssue({ code: "custom", path: ["schedule", "end"], message: "The schedule must end after it starts" });
    }
  });
export type SlotInput = z.output<typeof slotInput>;

export interface SlotRule {
  /** Stable id, reported as the `variant` when this rule wins. */
  id: string;
  segment: string;
  content: SlotContent;
}

/** A slot as the decision uses it; times are epoch ms. */
export interface SlotDefinition {
  key: string;
  default: SlotContent;
  rules: SlotRule[];
  holdout: number;
  startsAt: number | null;
  endsAt: number | null;
  goalEvent: string | null;
  createdAt: number;
  updatedAt: number;
}

export const slotSchema = z.object({
  key: z.string(),
  default: z.union([z.string(), z.record(z.string(), z.unknown())]),
  rules: z.array(
    z.object({
      id: z.string(),
      segment: z.string(),
      content: z.union([z.string(), z.record(z.string(), z.unknown())]),
    }),
  ),
  holdout: z.number(),
  schedule: z.object({ start: z.string().nullable(), end: z.string().nullable() }),
  goalEvent: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
});

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** The API shape of a slot (ISO times). */
export function slotJson(slot: SlotDefinition): z.infer<typeof slotSchema> {
  return {
    key: slot.key,
    default: slot.default,
    rules: slot.rules,
    holdout: slot.holdout,
    schedule: { start: iso(slot.startsAt), end: iso(slot.endsAt) },
    goalEvent: slot.goalEvent,
    createdAt: new Date(slot.createdAt).toISOString(),
    updatedAt: new Date(slot.updatedAt).toISOString(),
  };
}

// Rows are written only by `saveSlot`, but a hand-edited row must not crash decisions: a rule
// that does not parse is dropped, a slot whose default does not parse is skipped.
const storedRule = z.object({ id: z.string(), segment: z.string(), content: slotContent });
const storedDefault = slotContent;

interface SlotRow {
  key: string;
  default_content: string;
  rules: string;
  holdout: number;
  starts_at: number | null;
  ends_at: number | null;
  goal_event: string | null;
  created_at: number;
  updated_at: number;
}

const SLOT_COLUMNS = "key, default_content, rules, holdout, starts_at, ends_at, goal_event, created_at, updated_at";

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function fromRow(row: SlotRow): SlotDefinition | null {
  const def = storedDefault.safeParse(parseJson(row.default_content));
  if (!def.success) return null;
  const rawRules = parseJson(row.rules);
  const rules: SlotRule[] = [];
  for (const r of Array.isArray(rawRules) ? rawRules : []) {
    const parsed = storedRule.safeParse(r);
    if (parsed.success) rules.push(parsed.data);
  }
  return {
    key: row.key,
    default: def.data,
    rules,
    holdout: row.holdout,
    startsAt: row.starts_at,
    endsAt: row.ends_at,
    goalEvent: row.goal_event,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** Reads the given slots from D1 (≤ 100 keys: one statement), with the raw size of each row. */
async function readSlots(d1: D1Database, keys: string[]): Promise<{ slot: SlotDefinition; size: number }[]> {
  if (keys.length === 0) return [];
  if (keys.length > 100) throw new Error("readSlots: at most 100 keys per statement");
  const { results } = await d1
    .prepare(`SELECT ${SLOT_COLUMNS} FROM slots WHERE key IN (${keys.map(() => "?").join(",")})`)
    .bind(...keys)
    .all<SlotRow>();
  const out: { slot: SlotDefinition; size: number }[] = [];
  for (const row of results) {
    const slot = fromRow(row);
    if (slot) out.push({ slot, size: row.default_content.length + row.rules.length });
  }
  return out;
}

/** Reads one slot (no cache: the admin API always shows what is stored). */
export async function getSlot(d1: D1Database, key: string): Promise<SlotDefinition | null> {
  return (await readSlots(d1, [key]))[0]?.slot ?? null;
}

/** Every slot, ordered by key. */
export async function listSlots(d1: D1Database): Promise<SlotDefinition[]> {
  const { results } = await d1
    .prepare(`SELECT ${SLOT_COLUMNS} FROM slots ORDER BY key LIMIT ?`)
    .bind(MAX_SLOTS)
    .all<SlotRow>();
  return results.map(fromRow).filter((s): s is SlotDefinition => s !== null);
}

/**
 * Creates or replaces a slot. Rules without an id get a generated one, which `GET` returns:
 * clients that send it back keep the variant (and its stats) continuous across edits.
 * Returns the stored slot and whether it was created.
 */
export async function saveSlot(
  d1: D1Database,
  key: string,
  input: SlotInput,
  now: number,
): Promise<{ slot: SlotDefinition; created: boolean }> {
  const segmentKeys = [...new Set(input.rules.map((r) => r.segment))];
  const [known, existing] = await Promise.all([
    segmentKeys.length === 0
      ? Promise.resolve(new Set<string>())
      : d1
          .prepare(`SELECT key FROM segments WHERE key IN (${segmentKeys.map(() => "?").join(",")})`)
          .bind(...segmentKeys)
          .all<{ key: string }>()
          .then((r) => new Set(r.results.map((row) => row.key))),
    d1
      .prepare("SELECT (SELECT count(*) FROM slots) AS n, (SELECT 1 FROM slots WHERE key = ?) AS present")
      .bind(key)
      .first<{
        n: number;
        present: number | null;
      }>(),
  ]);
  // A typo in a segment key would make a rule silently never match: refuse it instead.
  const unknown = segmentKeys.filter((s) => !known.has(s));
  if (unknown.length > 0) {
    throw new ApiError("validation_failed", "Rules name segments that do not exist", {
      details: unknown.map((s) => ({ path: "rules.segment", message: `Unknown segment: ${s}` })),
    });
  }
  if (!existing?.present && (existing?.n ?? 0) >= MAX_SLOTS) {
    throw new ApiError("conflict", `A workspace holds at most ${MAX_SLOTS} slots; delete one first`);
  }

  const taken = new Set(input.rules.flatMap((r) => (r.id ? [r.id] : [])));
  const rules: SlotRule[] = input.rules.map((r) => {
    let id = r.id;
    while (id === undefined || (r.id === undefined && taken.has(id))) id = `rule_${randomToken(12)}`;
    taken.add(id);
    return { id, segment: r.segment, content: r.content };
  });
  const startsAt = input.schedule?.start ? Date.parse(input.schedule.start) : null;
  const endsAt = input.schedule?.end ? Date.parse(input.schedule.end) : null;

  const row = await d1
    .prepare(
      `INSERT INTO slots (${SLOT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET default_content = excluded.default_content, rules = excluded.rules,
         holdout = excluded.holdout, starts_at = excluded.starts_at, ends_at = excluded.ends_at,
         goal_event = excluded.goal_event, updated_at = excluded.updated_at
       RETURNING ${SLOT_COLUMNS}`,
    )
    .bind(
      key,
      JSON.stringify(input.default),
      JSON.stringify(rules),
      input.holdout,
      startsAt,
      endsAt,
      input.goalEvent ?? null,
      now,
      now,
    )
    .first<SlotRow>();
  slotCache.invalidate(key);
  const slot = row && fromRow(row);
  if (!slot) throw new Error("saveSlot: the stored slot could not be read back");
  return { slot, created: !existing?.present };
}

/** Deletes a slot; false when there was none. */
export async function deleteSlot(d1: D1Database, key: string): Promise<boolean> {
  const result = await d1.prepare("DELETE FROM slots WHERE key = ?").bind(key).run();
  slotCache.invalidate(key);
  return result.meta.changes > 0;
}

/** How long an isolate trusts its copy of a slot definition (documented in the README). */
export const SLOT_CACHE_TTL_MS = 5_000;
const CACHE_MAX_ENTRIES = 1_000;
// Definitions can be up to ~1 MB each; the cache must never threaten the 128 MB isolate limit.
const CACHE_MAX_BYTES = 16 * 1024 * 1024;

interface CacheEntry {
  slot: SlotDefinition | null;
  size: number;
  at: number;
}

/**
 * Per-isolate cache of slot definitions by key, including "no such slot" (so that pages asking
 * for unknown slots do not cost a read each). Entries expire after `SLOT_CACHE_TTL_MS`; writes
 * through this isolate invalidate at once, other isolates catch up within the TTL.
 */
export class SlotCache {
  private entries = new Map<string, CacheEntry>();
  private bytes = 0;

  constructor(private readonly ttlMs = SLOT_CACHE_TTL_MS) {}

  /** The slots among `keys` that exist (missing keys are absent), reading D1 only for stale keys. */
  async get(d1: D1Database, keys: string[], now: number): Promise<Map<string, SlotDefinition>> {
    const out = new Map<string, SlotDefinition>();
    const stale: string[] = [];
    for (const key of keys) {
      const entry = this.entries.get(key);
      if (entry && now - entry.at < this.ttlMs) {
        if (entry.slot) out.set(key, entry.slot);
      } else stale.push(key);
    }
    if (stale.length === 0) return out;
    const found = await readSlots(d1, stale);
    const byKey = new Map(found.map((f) => [f.slot.key, f]));
    for (const key of stale) {
      const hit = byKey.get(key);
      this.put(key, { slot: hit?.slot ?? null, size: hit?.size ?? 0, at: now });
      if (hit) out.set(key, hit.slot);
    }
    return out;
  }

  invalidate(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.bytes -= entry.size;
    this.entries.delete(key);
  }

  private put(key: string, entry: CacheEntry): void {
    this.invalidate(key);
    this.entries.set(key, entry);
    this.bytes += entry.size;
    // Maps iterate in insertion order: the first keys are the oldest entries.
    for (const oldest of this.entries.keys()) {
      if (this.entries.size <= CACHE_MAX_ENTRIES && this.bytes <= CACHE_MAX_BYTES) break;
      this.invalidate(oldest);
    }
  }
}

/** The isolate's shared cache (decisions and the proxy read through it; writes invalidate it). */
export const slotCache = new SlotCache();
