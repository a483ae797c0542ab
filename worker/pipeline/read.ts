/**
 * The read step of a consumer batch: everything the decisions need, in three round trips (sites
 * and already-stored messageIds; identities and suppressions; profiles and, for profiles a link
 * may change, their identities, absorbed profiles, notes and tasks). Sets travel as one JSON
 * array parameter read with `json_each(?)`, chunked, so no statement nears D1's 100 bound
 * parameters whatever the batch size.
 */
import { candidateKeys, type Identifier, keyOf, suppressionHash } from "../identity/extract";
import { resolvePolicy } from "../identity/policy";
import { jsonList, type Profile, type ProfileRow, profileFromRow } from "../profiles/state";
import type { BatchState, SiteEvent, SiteInfo } from "./plan";

const CHUNK = 500;

// Suppression hashes of identifiers seen lately, per isolate: returning visitors come back batch
// after batch, and a SHA-256 through crypto.subtle plus its hex string is the costliest step of
// reading a page view's state. A hash never changes, so the cache only bounds memory.
const MAX_CACHED_HASHES = 20_000;
const hashCache = new Map<string, string>();

async function hashOf(key: string): Promise<string> {
  const hit = hashCache.get(key);
  if (hit !== undefined) return hit;
  const at = key.indexOf(":");
  const hash = await suppressionHash({ type: key.slice(0, at), value: key.slice(at + 1) });
  if (hashCache.size >= MAX_CACHED_HASHES) hashCache.delete(hashCache.keys().next().value as string);
  hashCache.set(key, hash);
  return hash;
}

function chunks<T>(items: readonly T[], size = CHUNK): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Runs one SELECT per chunk of `items`, all in a single round trip; returns every row. */
async function selectIn<Row>(db: D1Database, sql: string, items: readonly unknown[]): Promise<Row[]> {
  if (items.length === 0) return [];
  const results = await db.batch<Row>(chunks(items).map((part) => db.prepare(sql).bind(jsonList(part))));
  return results.flatMap((r) => r.results);
}

interface SiteRow {
  id: string;
  identity_verification: number;
  identity_policy: string | null;
}

function parsePolicy(text: string | null) {
  try {
    return resolvePolicy(text ? JSON.parse(text) : {});
  } catch {
    return resolvePolicy({});
  }
}

const sqlSites =
  "SELECT id, identity_verification, identity_policy FROM sites WHERE id IN (SELECT value FROM json_each(?1))";
const sqlStored =
  "SELECT e.site_id, e.message_id FROM json_each(?1) j JOIN events e ON e.site_id = j.value ->> 0 AND e.message_id = j.value ->> 1";
const sqlIdentities =
  "SELECT i.type, i.value, i.profile_id FROM json_each(?1) j JOIN identities i ON i.type = j.value ->> 0 AND i.value = j.value ->> 1";
const sqlSuppressed = "SELECT hash FROM suppressions WHERE hash IN (SELECT value FROM json_each(?1))";
const sqlProfiles = "SELECT * FROM profiles WHERE id IN (SELECT value FROM json_each(?1))";
const sqlIdentitiesOf =
  "SELECT profile_id, type, value FROM identities WHERE profile_id IN (SELECT value FROM json_each(?1))";
const sqlAbsorbed = "SELECT id, merged_into FROM profiles WHERE merged_into IN (SELECT value FROM json_each(?1))";
const sqlNotes = "SELECT id, profile_id FROM notes WHERE profile_id IN (SELECT value FROM json_each(?1))";
const sqlTasks = "SELECT id, profile_id FROM tasks WHERE profile_id IN (SELECT value FROM json_each(?1))";

function groupBy<Row>(rows: Row[], key: (r: Row) => string, value: (r: Row) => string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const row of rows) {
    const list = out.get(key(row)) ?? [];
    list.push(value(row));
    out.set(key(row), list);
  }
  return out;
}

/** Reads the state a batch of events needs. */
export async function readState(db: D1Database, input: SiteEvent[]): Promise<BatchState> {
  const siteIds = [...new Set(input.map((e) => e.siteId))];
  const messageKeys = input.map((e) => [e.siteId, e.event.messageId]);
  const [siteRows, storedRows] = await Promise.all([
    selectIn<SiteRow>(db, sqlSites, siteIds),
    selectIn<{ site_id: string; message_id: string }>(db, sqlStored, messageKeys),
  ]);
  const sites = new Map<string, SiteInfo>(
    siteRows.map((r) => [
      r.id,
      { id: r.id, verification: Boolean(r.identity_verification), policy: parsePolicy(r.identity_policy) },
    ]),
  );
  const stored = new Set(storedRows.map((r) => `${r.site_id}\u0000${r.message_id}`));

  // Identifier keys per event (both readings of an alias's previousId).
  const eventKeys: string[][] = input.map(({ siteId, event }) => {
    const site = sites.get(siteId);
    return site && !stored.has(`${siteId}\u0000${event.messageId}`) ? candidateKeys(event, site.policy) : [];
  });
  const allKeys = [...new Set(eventKeys.flat())];
  const hashes = new Map<string, string>();
  await Promise.all(
    allKeys.map(async (key) => {
      hashes.set(key, await hashOf(key));
    }),
  );
  const [identityRows, suppressedRows] = await Promise.all([
    selectIn<{ type: string; value: string; profile_id: string }>(
      db,
      sqlIdentities,
      allKeys.map((k) => [k.slice(0, k.indexOf(":")), k.slice(k.indexOf(":") + 1)]),
    ),
    selectIn<{ hash: string }>(db, sqlSuppressed, [...hashes.values()]),
  ]);
  const owners = new Map(identityRows.map((r) => [keyOf(r), r.profile_id]));

  // A link can change a profile when an event names an identifier the graph doesn't know yet or
  // identifiers on two profiles; only those profiles need their identities (and related rows).
  const detail = new Set<string>();
  for (const keys of eventKeys) {
    const profilesOfEvent = new Set(keys.flatMap((k) => (owners.has(k) ? [owners.get(k) as string] : [])));
    const unknown = keys.some((k) => !owners.has(k));
    if (profilesOfEvent.size > 1 || (unknown && profilesOfEvent.size > 0)) {
      for (const p of profilesOfEvent) detail.add(p);
    }
  }

  const profiles = new Map<string, Profile>();
  let wanted = [...new Set(owners.values())];
  // Identities point at live profiles; should one still point at a merged-away profile (a writer
  // outside the pipeline), follow merged_into to the survivor (bounded: chains are kept flat).
  for (let hop = 0; wanted.length > 0 && hop < 5; hop++) {
    const rows = await selectIn<ProfileRow>(db, sqlProfiles, wanted);
    const next: string[] = [];
    for (const row of rows) {
      profiles.set(row.id, profileFromRow(row));
      if (row.merged_into && !profiles.has(row.merged_into)) next.push(row.merged_into);
    }
    wanted = next;
  }
  const liveOf = (id: string) => {
    let current = id;
    for (let hop = 0; hop < 5; hop++) {
      const p = profiles.get(current);
      if (!p?.mergedInto) return current;
      current = p.mergedInto;
    }
    return current;
  };
  for (const [key, id] of owners) owners.set(key, liveOf(id));
  const detailIds = [...new Set([...detail].map(liveOf))];

  const [identityList, absorbedRows, noteRows, taskRows] = await Promise.all([
    selectIn<{ profile_id: string; type: string; value: string }>(db, sqlIdentitiesOf, detailIds),
    selectIn<{ id: string; merged_into: string }>(db, sqlAbsorbed, detailIds),
    selectIn<{ id: string; profile_id: string }>(db, sqlNotes, detailIds),
    selectIn<{ id: string; profile_id: string }>(db, sqlTasks, detailIds),
  ]);
  const identities = new Map<string, Identifier[]>(detailIds.map((id) => [id, []]));
  for (const r of identityList) identities.get(r.profile_id)?.push({ type: r.type, value: r.value });

  return {
    sites,
    stored,
    hashes,
    suppressed: new Set(suppressedRows.map((r) => r.hash)),
    owners,
    profiles: new Map([...profiles].filter(([, p]) => p.mergedInto === null)),
    identities,
    absorbed: groupBy(
      absorbedRows,
      (r) => r.merged_into,
      (r) => r.id,
    ),
    noteIds: groupBy(
      noteRows,
      (r) => r.profile_id,
      (r) => r.id,
    ),
    taskIds: groupBy(
      taskRows,
      (r) => r.profile_id,
      (r) => r.id,
    ),
  };
}
