/**
 * Factories for segment tests: profiles and events written the way the pipeline writes them,
 * and `commit`, which plays the pipeline consumer's part around the segment hook (count the
 * events into the profile's counters, call planSegmentWrites, run everything in one batch).
 */
import { env } from "cloudflare:test";
import { newId } from "../../worker/lib/ids";
import {
  addCounters,
  compactCounters,
  countEvent,
  parseCounters,
  serializeCounters,
} from "../../worker/segments/counters";
import { type ProfileDelta, planSegmentWrites } from "../../worker/segments/pipeline";
import { loadSegments } from "../../worker/segments/store";
import type { NormalizedEvent } from "../../worker/wire/queue";

export const T0 = Date.UTC(2025, 4, 14, 12, 0, 0);
export const MIN = 60_000;
export const HOUR = 3_600_000;
export const DAY = 86_400_000;

let seq = 0;

export function makeEvent(overrides: Partial<NormalizedEvent> = {}): NormalizedEvent {
  seq++;
  return {
    type: "track",
    messageId: `m-${seq}-${Math.random().toString(36).slice(2)}`,
    anonymousId: `anon-${seq}`,
    userId: null,
    previousId: null,
    groupId: null,
    event: "Product Added",
    name: null,
    properties: {},
    traits: {},
    context: {},
    timestamp: T0,
    receivedAt: T0,
    flags: [],
    verified: false,
    ...overrides,
  };
}

export interface ProfileSeed {
  id?: string;
  traits?: Record<string, unknown>;
  computed?: Record<string, unknown>;
  email?: string | null;
  name?: string | null;
  mergedInto?: string | null;
  lastSeenAt?: number;
}

/** Inserts profile rows directly (the pipeline's job in production). */
export async function seedProfiles(seeds: ProfileSeed[]): Promise<string[]> {
  const ids = seeds.map((s) => s.id ?? newId("prf"));
  const statements = seeds.map((s, i) =>
    env.DB.prepare(
      "INSERT INTO profiles (id, merged_into, traits, computed, email, name, last_seen_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ).bind(
      ids[i],
      s.mergedInto ?? null,
      JSON.stringify(s.traits ?? {}),
      JSON.stringify(s.computed ?? {}),
      s.email ?? null,
      s.name ?? null,
      s.lastSeenAt ?? T0,
      T0,
      T0,
    ),
  );
  for (let i = 0; i < statements.length; i += 50) await env.DB.batch(statements.slice(i, i + 50));
  return ids;
}

/** Inserts event rows directly, as already stored by an earlier pipeline batch. */
export async function seedEvents(rows: { profileId: string; event: NormalizedEvent }[]): Promise<void> {
  const statements = rows.map(({ profileId, event: e }) =>
    env.DB.prepare(
      "INSERT INTO events (site_id, message_id, profile_id, type, event, name, properties, context, timestamp, received_at) VALUES ('site_test', ?, ?, ?, ?, ?, ?, '{}', ?, ?)",
    ).bind(e.messageId, profileId, e.type, e.event, e.name, JSON.stringify(e.properties), e.timestamp, e.receivedAt),
  );
  for (let i = 0; i < statements.length; i += 50) await env.DB.batch(statements.slice(i, i + 50));
}

/** What a test hands `commit`: a delta without the parts the pipeline derives (counters, flags). */
export interface TestDelta extends Omit<ProfileDelta, "counters" | "isNew" | "rebuilt"> {
  /** Profiles merged into this one in this batch: their stored counters fold into its own. */
  absorbed: string[];
}

export function delta(profileId: string, overrides: Partial<TestDelta> = {}): TestDelta {
  return { profileId, traits: {}, computed: {}, changedTraits: [], events: [], absorbed: [], ...overrides };
}

/**
 * What the pipeline consumer does around the hook: load the segment set, count each delta's
 * events into its stored counters (folding absorbed profiles' in first), then one atomic batch
 * with the events, the profile rows and the hook's writes.
 */
export async function commit(deltas: TestDelta[], now: number): Promise<void> {
  const segs = await loadSegments(env.DB);
  const scope = { matchers: segs.matchers, firstDay: segs.firstDay(now) };
  const ids = deltas.flatMap((d) => [d.profileId, ...d.absorbed]);
  const { results } = await env.DB.prepare(
    "SELECT id, counters FROM profiles WHERE id IN (SELECT value FROM json_each(?))",
  )
    .bind(JSON.stringify(ids))
    .all<{ id: string; counters: string }>();
  const stored = new Map(results.map((r) => [r.id, parseCounters(r.counters)]));
  const full: ProfileDelta[] = deltas.map(({ absorbed, ...d }) => {
    const counters = stored.get(d.profileId) ?? {};
    for (const id of absorbed) addCounters(counters, stored.get(id) ?? {});
    for (const e of d.events) countEvent(counters, scope, e);
    compactCounters(counters, scope);
    // No row yet: the pipeline creates the profile in this batch.
    return { ...d, counters, isNew: !stored.has(d.profileId), rebuilt: absorbed.length > 0 };
  });
  const statements = await planSegmentWrites(env.DB, segs, full, now);
  const stores = full.flatMap((d) =>
    d.events.map((e) =>
      env.DB.prepare(
        "INSERT INTO events (site_id, message_id, profile_id, type, event, name, properties, context, timestamp, received_at) VALUES ('site_test', ?, ?, ?, ?, ?, ?, '{}', ?, ?)",
      ).bind(
        e.messageId,
        d.profileId,
        e.type,
        e.event,
        e.name,
        JSON.stringify(e.properties),
        e.timestamp,
        e.receivedAt,
      ),
    ),
  );
  const rows = full.map((d) =>
    env.DB.prepare("UPDATE profiles SET traits = ?, computed = ?, counters = ? WHERE id = ?").bind(
      JSON.stringify(d.traits),
      JSON.stringify(d.computed),
      serializeCounters(d.counters),
      d.profileId,
    ),
  );
  const all = [...stores, ...rows, ...statements];
  if (all.length) await env.DB.batch(all);
}

/** The segment keys a profile is a member of. */
export async function memberKeys(profileId: string): Promise<string[]> {
  const rows = await env.DB.prepare("SELECT segment_key FROM memberships WHERE profile_id = ? ORDER BY segment_key")
    .bind(profileId)
    .all<{ segment_key: string }>();
  return rows.results.map((r) => r.segment_key);
}

/** A profile's enter/exit history in one segment, oldest first. */
export async function historyOf(segmentKey: string, profileId: string): Promise<string[]> {
  const rows = await env.DB.prepare(
    "SELECT change FROM membership_changes WHERE segment_key = ? AND profile_id = ? ORDER BY at, rowid",
  )
    .bind(segmentKey, profileId)
    .all<{ change: string }>();
  return rows.results.map((r) => r.change);
}

export const uniqueKey = (prefix: string) => `${prefix}-${Math.random().toString(36).slice(2, 10)}`;
