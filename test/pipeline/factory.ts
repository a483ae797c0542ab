/** Factories for pipeline tests: NormalizedEvents, queue bodies, sites and profile reads. */
import { env } from "cloudflare:test";
import { processBatch } from "../../worker/pipeline/process";
import type { NormalizedEvent, QueuedBatch } from "../../worker/wire/queue";

let counter = 0;
/** A unique suffix, so tests sharing one database never see each other's people. */
export const uid = (prefix = "") =>
  `${prefix}${Date.now().toString(36)}${(counter++).toString(36)}${Math.random().toString(36).slice(2, 6)}`;

export const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);

export function makeEvent(overrides: Partial<NormalizedEvent> = {}): NormalizedEvent {
  const timestamp = overrides.timestamp ?? T0;
  return {
    type: "track",
    messageId: uid("msg_"),
    anonymousId: null,
    userId: null,
    previousId: null,
    groupId: null,
    event: overrides.type === undefined || overrides.type === "track" ? "Clicked" : null,
    name: null,
    properties: {},
    traits: {},
    context: {},
    timestamp,
    receivedAt: timestamp,
    flags: [],
    verified: false,
    ...overrides,
  };
}

export const page = (overrides: Partial<NormalizedEvent> = {}) =>
  makeEvent({ type: "page", event: null, properties: { path: "/", url: "https://shop.example/" }, ...overrides });

export const identify = (overrides: Partial<NormalizedEvent> = {}) =>
  makeEvent({ type: "identify", event: null, ...overrides });

export const body = (siteId: string, events: NormalizedEvent[]): QueuedBatch => ({ v: 1, siteId, events });

/** Inserts a site directly (faster than the API) and returns its id. */
export async function makeSiteRow(opts: { verification?: boolean; policy?: unknown } = {}): Promise<string> {
  const id = uid("site_");
  await env.DB.prepare(
    `INSERT INTO sites (id, name, write_key, allowed_origins, identity_verification, verification_secret,
       identity_policy, created_at, updated_at) VALUES (?, 'Test', ?, '[]', ?, 'ivs_test', ?, ?, ?)`,
  )
    .bind(id, uid("wk_"), opts.verification ? 1 : 0, JSON.stringify(opts.policy ?? {}), T0, T0)
    .run();
  return id;
}

/** Runs events of one site through the pipeline. */
export const run = (siteId: string, events: NormalizedEvent[], now = T0 + 60_000) =>
  processBatch(env, [body(siteId, events)], now);

/** The live profile id an identifier resolves to (null when unknown). */
export async function profileOf(type: string, value: string): Promise<string | null> {
  const row = await env.DB.prepare("SELECT profile_id FROM identities WHERE type = ? AND value = ?")
    .bind(type, value)
    .first<{ profile_id: string }>();
  return row?.profile_id ?? null;
}

export interface ProfileRecord {
  id: string;
  merged_into: string | null;
  traits: Record<string, unknown>;
  computed: Record<string, unknown> & { event_counts: Record<string, number> };
  email: string | null;
  name: string | null;
  identified: number;
  merge_count: number;
  company_id: string | null;
  first_seen_at: number | null;
  last_seen_at: number | null;
  created_at: number;
  updated_at: number;
}

export async function profileRow(id: string): Promise<ProfileRecord> {
  const row = await env.DB.prepare("SELECT * FROM profiles WHERE id = ?").bind(id).first<Record<string, unknown>>();
  if (!row) throw new Error(`no profile ${id}`);
  return {
    ...(row as unknown as ProfileRecord),
    traits: JSON.parse(row.traits as string),
    computed: JSON.parse(row.computed as string),
  };
}

export async function identitiesOf(profileId: string): Promise<string[]> {
  const { results } = await env.DB.prepare(
    "SELECT type, value FROM identities WHERE profile_id = ? ORDER BY type, value",
  )
    .bind(profileId)
    .all<{ type: string; value: string }>();
  return results.map((r) => `${r.type}:${r.value}`);
}

export async function warningsAbout(value: string) {
  const { results } = await env.DB.prepare("SELECT * FROM identity_warnings WHERE identifier_value = ?")
    .bind(value)
    .all<{ profile_id: string | null; identifier_type: string; reason: string }>();
  return results;
}
