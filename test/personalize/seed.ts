/**
 * Seeds identities, profiles, segments and memberships straight into D1 (the pipeline's tables),
 * so that personalization can be tested on its own, plus small helpers for its routes.
 */
import { env, SELF } from "cloudflare:test";
import { api, BASE } from "../helpers/api";

let counter = 0;

/** A unique, readable id for one test's data (tests share one database). */
export function unique(prefix: string): string {
  counter += 1;
  return `${prefix}-${Date.now().toString(36)}-${counter}-${Math.random().toString(36).slice(2, 8)}`;
}

// Memberships are seeded by hand; the rule names a trait no event sets, so that the segments
// engine (run by the pipeline on exposure events) never re-evaluates them away.
const SEED_RULE = JSON.stringify({ trait: "personalize_test_seed", op: "exists" });

export async function seedSegment(key: string, options: { public?: boolean } = {}): Promise<void> {
  const now = Date.now();
  await env.DB.prepare(
    `INSERT INTO segments (key, name, rule, public, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT (key) DO UPDATE SET public = excluded.public`,
  )
    .bind(key, `Segment ${key}`, SEED_RULE, options.public ? 1 : 0, now, now)
    .run();
}

export interface ProfileSeed {
  anonymousId?: string;
  userId?: string;
  email?: string;
  name?: string;
  traits?: Record<string, unknown>;
  segments?: string[];
  mergedInto?: string;
}

/** Inserts a profile with its identities and memberships; returns its id. */
export async function seedProfile(seed: ProfileSeed = {}): Promise<string> {
  const id = unique("prf");
  const now = Date.now();
  const statements = [
    env.DB.prepare(
      `INSERT INTO profiles (id, merged_into, traits, email, name, identified, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    ).bind(
      id,
      seed.mergedInto ?? null,
      JSON.stringify(seed.traits ?? {}),
      seed.email ?? null,
      seed.name ?? null,
      seed.userId || seed.email ? 1 : 0,
      now,
      now,
    ),
  ];
  for (const [type, value] of [
    ["anonymous_id", seed.anonymousId],
    ["user_id", seed.userId],
    ["email", seed.email],
  ] as const) {
    if (value) {
      statements.push(
        env.DB.prepare("INSERT INTO identities (type, value, profile_id, created_at) VALUES (?, ?, ?, ?)").bind(
          type,
          value,
          id,
          now,
        ),
      );
    }
  }
  for (const segment of seed.segments ?? []) statements.push(membership(id, segment));
  await env.DB.batch(statements);
  return id;
}

function membership(profileId: string, segment: string) {
  return env.DB.prepare("INSERT INTO memberships (segment_key, profile_id, entered_at) VALUES (?, ?, ?)").bind(
    segment,
    profileId,
    Date.now(),
  );
}

/** Puts a profile into a segment, the way the segments engine does. */
export async function addMembership(profileId: string, segment: string): Promise<void> {
  await membership(profileId, segment).run();
}

export interface SlotBody {
  default: unknown;
  rules?: { id?: string; segment: string; content: unknown }[];
  holdout?: number;
  schedule?: { start?: string | null; end?: string | null } | null;
  goalEvent?: string | null;
}

/** Creates or replaces a slot through the admin API (throws unless it is stored). */
export async function putSlot(key: string, body: SlotBody) {
  const res = await api(`/api/slots/${key}`, { method: "PUT", body });
  if (res.status !== 200 && res.status !== 201) throw new Error(`putSlot: ${res.status} ${await res.text()}`);
  return (await res.json()) as { key: string; rules: { id: string; segment: string }[] };
}

/** Calls `/v1/personalize` like the snippet does (write key in the query). */
export function decideUrl(params: { writeKey?: string; slots: string[]; anonymousId?: string; userId?: string }) {
  const q = new URLSearchParams({ slots: params.slots.join(",") });
  if (params.writeKey) q.set("writeKey", params.writeKey);
  if (params.anonymousId) q.set("anonymousId", params.anonymousId);
  if (params.userId) q.set("userId", params.userId);
  return `${BASE}/v1/personalize?${q}`;
}

export interface Decided {
  slots: Record<string, { content: unknown; variant: string }>;
  segments?: string[];
}

/** The decision for a visitor, asserting a 200. */
export async function decide(params: Parameters<typeof decideUrl>[0]): Promise<Decided> {
  const res = await SELF.fetch(decideUrl(params));
  if (res.status !== 200) throw new Error(`decide: ${res.status} ${await res.text()}`);
  return (await res.json()) as Decided;
}

/** A D1 binding whose every query fails (or, with `hang`, never answers): for fail-open tests. */
export function brokenDb(mode: "throw" | "hang" = "throw"): D1Database {
  const fail = () =>
    mode === "hang" ? new Promise<never>(() => {}) : Promise.reject(new Error("D1_ERROR: simulated outage"));
  const statement = {
    bind: () => statement,
    all: fail,
    first: fail,
    raw: fail,
    run: fail,
  };
  return { prepare: () => statement, batch: fail, exec: fail, dump: fail } as unknown as D1Database;
}

/** A queue that records what is sent to it. */
export function recordingQueue() {
  const sent: unknown[] = [];
  const queue = {
    send: async (body: unknown) => {
      sent.push(body);
    },
    sendBatch: async (messages: Iterable<{ body: unknown }>) => {
      for (const m of messages) sent.push(m.body);
    },
  } as unknown as Queue<unknown>;
  return { queue, sent };
}
