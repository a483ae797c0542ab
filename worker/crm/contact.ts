/** Contacts are live profiles: resolving ids through merges, and the JSON shape of a contact. */
import { z } from "zod";
import { ApiError } from "../lib/errors";

export const contactSchema = z.object({
  id: z.string(),
  email: z.string().nullable(),
  name: z.string().nullable(),
  lifecycleStage: z.string().nullable(),
  ownerId: z.string().nullable(),
  tags: z.array(z.string()),
  identified: z.boolean(),
  firstSeenAt: z.string().nullable(),
  lastSeenAt: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type Contact = z.infer<typeof contactSchema>;

/** A `profiles` row as the contacts queries select it (`list-sql.ts` `contactColumns`). */
export interface ContactRow {
  id: string;
  email: string | null;
  name: string | null;
  lifecycle_stage: string | null;
  owner_id: string | null;
  tags: string;
  identified: number;
  first_seen_at: number | null;
  last_seen_at: number | null;
  created_at: number;
  updated_at: number;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

function parseTags(json: string): string[] {
  try {
    const tags: unknown = JSON.parse(json);
    return Array.isArray(tags) ? tags.filter((t): t is string => typeof t === "string") : [];
  } catch {
    return [];
  }
}

export function contactJson(row: ContactRow): Contact {
  return {
    id: row.id,
    email: row.email,
    name: row.name,
    lifecycleStage: row.lifecycle_stage,
    ownerId: row.owner_id,
    tags: parseTags(row.tags),
    identified: row.identified === 1,
    firstSeenAt: iso(row.first_seen_at),
    lastSeenAt: iso(row.last_seen_at),
    createdAt: new Date(row.created_at).toISOString(),
    updatedAt: new Date(row.updated_at).toISOString(),
  };
}

/**
 * The live profile an id stands for: itself, or the survivor it was merged into (following a
 * chain of merges, bounded). 404 when there is none (unknown or erased).
 */
export async function resolveContactId(d1: D1Database, id: string): Promise<string> {
  const row = await d1
    .prepare(
      `WITH RECURSIVE chain(id, next, depth) AS (
         SELECT id, merged_into, 0 FROM profiles WHERE id = ?1
         UNION ALL
         SELECT p.id, p.merged_into, c.depth + 1 FROM profiles p JOIN chain c ON p.id = c.next WHERE c.depth < 32)
       SELECT id FROM chain WHERE next IS NULL LIMIT 1`,
    )
    .bind(id)
    .first<{ id: string }>();
  if (!row) throw new ApiError("not_found", "Contact not found");
  return row.id;
}

/** Reads one live contact. */
export async function readContact(d1: D1Database, id: string): Promise<Contact> {
  const row = await d1
    .prepare(
      `SELECT id, email, name, lifecycle_stage, owner_id, tags, identified, first_seen_at, last_seen_at, created_at, updated_at
       FROM profiles WHERE id = ?1 AND merged_into IS NULL`,
    )
    .bind(id)
    .first<ContactRow>();
  if (!row) throw new ApiError("not_found", "Contact not found");
  return contactJson(row);
}
