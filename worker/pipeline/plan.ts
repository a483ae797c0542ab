/**
 * The decide step of a consumer batch, in memory and without I/O: given what the read step found,
 * which events are stored, on which profiles, which identifiers attach, which profiles merge, and
 * what every touched profile looks like afterwards. `write.ts` turns the plan into statements.
 */
import { extractIdentifiers, type Identifier, keyOf } from "../identity/extract";
import type { MergeRecord } from "../identity/merge";
import type { IdentityPolicy } from "../identity/policy";
import { decideLink, IdentityGraph, type LinkTarget } from "../identity/stitch";
import { newId } from "../lib/ids";
import { applyEvent, parseComputed } from "../profiles/computed";
import { absorbProfile, foldProfile, mergedColumns } from "../profiles/merge";
import type { Profile } from "../profiles/state";
import { applyTraits, displayName } from "../profiles/traits";
import { type CounterScope, compactCounters, countEvent } from "../segments/counters";
import type { ProfileDelta } from "../segments/pipeline";
import type { NormalizedEvent } from "../wire/queue";

export interface SiteInfo {
  id: string;
  verification: boolean;
  policy: IdentityPolicy;
}

/** An event with the site it came from. */
export interface SiteEvent {
  siteId: string;
  event: NormalizedEvent;
}

/** Everything the read step found (see read.ts). */
export interface BatchState {
  sites: Map<string, SiteInfo>;
  /** `site \u0000 messageId` of events already stored. */
  stored: Set<string>;
  /** Identifier key → suppression hash, for every identifier the batch carries. */
  hashes: Map<string, string>;
  /** Hashes found in `suppressions`. */
  suppressed: Set<string>;
  /** Identifier key → profile id, for identifiers already in the graph. */
  owners: Map<string, string>;
  /** Live profiles those identifiers belong to. */
  profiles: Map<string, Profile>;
  /** Full identity lists, for profiles that a link may change (see read.ts). */
  identities: Map<string, Identifier[]>;
  absorbed: Map<string, string[]>;
  noteIds: Map<string, string[]>;
  taskIds: Map<string, string[]>;
}

/** A profile in the batch's working set. */
export interface Holder {
  profile: Profile;
  /** Created by this batch (not in D1 yet). */
  isNew: boolean;
  /** `updated_at` as read (the guard's expectation); null for new profiles. */
  readUpdatedAt: number | null;
  counts?: Record<string, number>;
  identities?: Identifier[];
  seq: number;
  dirty: boolean;
  changedTraits: Set<string>;
  events: NormalizedEvent[];
  /** Existing profiles merged into this one in this batch. */
  mergedFrom: string[];
  /** Set columns this batch changed (existing profiles are updated column by column). */
  changed: Set<keyof Profile>;
}

export interface WarningRecord {
  profileId: string | null;
  messageId: string;
  identifier: Identifier;
  reason: string;
}

export interface StoredEvent {
  siteId: string;
  event: NormalizedEvent;
  profileId: string;
}

export interface Plan {
  events: StoredEvent[];
  /** Profiles to insert (created here and still live). */
  created: Holder[];
  /** Existing live profiles to update. */
  updated: Holder[];
  /** Merges of existing profiles, in the order they happened. */
  merges: MergeRecord[];
  identities: { identifier: Identifier; profileId: string; messageId: string }[];
  groups: Map<string, Record<string, unknown>>;
  warnings: WarningRecord[];
  /** Existing profiles whose state this plan relied on, with the `updated_at` it read. */
  expectations: [string, number][];
  /** Hashes of the identifiers this plan attaches (must still not be suppressed at write time). */
  attachedHashes: string[];
  counts: { duplicates: number; suppressed: number; dropped: number };
  deltas: ProfileDelta[];
  now: number;
}

const traitsOf = (event: NormalizedEvent) =>
  event.type === "identify" || event.type === "alias" ? event.traits : ({} as Record<string, unknown>);

function emptyProfile(id: string, now: number): Profile {
  return {
    id,
    mergedInto: null,
    traits: {},
    traitMeta: {},
    computed: parseComputed({}),
    counters: {},
    email: null,
    name: null,
    identified: false,
    companyId: null,
    lifecycleStage: null,
    ownerId: null,
    tags: [],
    mergeCount: 0,
    firstSeenAt: null,
    lastSeenAt: null,
    lastSeenSort: null,
    createdAt: now,
    updatedAt: now,
  };
}

const countIdentities = (list: Identifier[]) => {
  const counts: Record<string, number> = {};
  for (const { type } of list) counts[type] = (counts[type] ?? 0) + 1;
  return counts;
};

/**
 * Plans one consumer batch, counting events under the segment set's `scope`. Pure: the same
 * state, scope and events always give the same decisions.
 */
export function planBatch(input: SiteEvent[], state: BatchState, scope: CounterScope, now: number): Plan {
  const graph = new IdentityGraph(new Map(state.owners));
  const holders = new Map<string, Holder>();
  let seq = 0;
  const plan: Plan = {
    events: [],
    created: [],
    updated: [],
    merges: [],
    identities: [],
    groups: new Map(),
    warnings: [],
    expectations: [],
    attachedHashes: [],
    counts: { duplicates: 0, suppressed: 0, dropped: 0 },
    deltas: [],
    now,
  };
  const warned = new Set<string>();
  const warn = (profileId: string | null, messageId: string, identifier: Identifier, reason: string) => {
    const key = `${keyOf(identifier)}\u0000${reason}`;
    if (warned.has(key)) return;
    warned.add(key);
    plan.warnings.push({ profileId, messageId, identifier, reason });
  };

  const holderOf = (id: string): Holder => {
    const found = holders.get(id);
    if (found) return found;
    const profile = state.profiles.get(id);
    // The read step loads every profile an identifier points to; a miss is a broken invariant.
    if (!profile) throw new Error(`profile ${id} was not loaded`);
    const identities = state.identities.get(id);
    const holder: Holder = {
      profile,
      isNew: false,
      readUpdatedAt: profile.updatedAt,
      counts: identities ? countIdentities(identities) : undefined,
      identities: identities ? [...identities] : undefined,
      seq: seq++,
      dirty: false,
      changedTraits: new Set(),
      events: [],
      mergedFrom: [],
      changed: new Set(),
    };
    holders.set(id, holder);
    return holder;
  };

  const create = (): Holder => {
    const id = newId("prf");
    const holder: Holder = {
      profile: emptyProfile(id, now),
      isNew: true,
      readUpdatedAt: null,
      counts: {},
      identities: [],
      seq: seq++,
      dirty: true,
      changedTraits: new Set(),
      events: [],
      mergedFrom: [],
      changed: new Set(),
    };
    holders.set(id, holder);
    return holder;
  };

  const targetOf = (id: string): LinkTarget => {
    const h = holderOf(id);
    return { id, counts: h.counts, mergeCount: h.isNew ? 0 : h.profile.mergeCount, existing: !h.isNew };
  };

  // Older survives; a profile already stored beats one created by this batch at the same time.
  const older = (a: Holder, b: Holder) =>
    a.profile.createdAt - b.profile.createdAt || Number(a.isNew) - Number(b.isNew) || a.seq - b.seq;

  const merge = (winner: Holder, loser: Holder, event: NormalizedEvent, identifier: Identifier) => {
    let changedTraits: string[];
    if (!loser.isNew) {
      if (!loser.identities) throw new Error(`identities of ${loser.profile.id} were not loaded`);
      const absorbed = absorbProfile(winner.profile, loser.profile, {
        identities: loser.identities,
        absorbed: [...(state.absorbed.get(loser.profile.id) ?? []), ...loser.mergedFrom],
        noteIds: state.noteIds.get(loser.profile.id) ?? [],
        taskIds: state.taskIds.get(loser.profile.id) ?? [],
      });
      plan.merges.push({
        id: newId("mrg"),
        winnerId: winner.profile.id,
        loserId: loser.profile.id,
        messageId: event.messageId,
        identifier,
        snapshot: absorbed.snapshot,
        actor: null,
      });
      winner.mergedFrom.push(loser.profile.id);
      changedTraits = absorbed.changedTraits;
    } else {
      // Created by this batch: nothing to log or undo, it just joins the survivor.
      changedTraits = foldProfile(winner.profile, loser.profile);
    }
    winner.mergedFrom.push(...loser.mergedFrom);
    for (const name of changedTraits) winner.changedTraits.add(name);
    for (const [type, n] of Object.entries(loser.counts ?? {})) {
      if (winner.counts) winner.counts[type] = (winner.counts[type] ?? 0) + n;
    }
    winner.identities?.push(...(loser.identities ?? []));
    winner.events.push(...loser.events);
    loser.events = [];
    winner.dirty = true;
    for (const column of mergedColumns) winner.changed.add(column);
    graph.union(loser.profile.id, winner.profile.id);
  };

  const seen = new Set<string>();
  const ordered = input
    .map((item, index) => ({ ...item, index }))
    .sort((a, b) => a.event.timestamp - b.event.timestamp || a.index - b.index);

  for (const { siteId, event } of ordered) {
    const site = state.sites.get(siteId);
    if (!site) {
      plan.counts.dropped++;
      continue;
    }
    const dedupeKey = `${siteId}\u0000${event.messageId}`;
    if (state.stored.has(dedupeKey) || seen.has(dedupeKey)) {
      plan.counts.duplicates++;
      continue;
    }
    seen.add(dedupeKey);

    const previousIdType = (value: string) =>
      graph.has(`user_id:${value}`) && !graph.has(`anonymous_id:${value}`) ? "user_id" : "anonymous_id";
    const extracted = extractIdentifiers(event, site.policy, previousIdType);
    if (extracted.identifiers.some((id) => state.suppressed.has(state.hashes.get(keyOf(id)) ?? ""))) {
      plan.counts.suppressed++;
      continue;
    }
    let identifiers = extracted.identifiers;
    // Reported against the profile the event lands on, once that is known.
    const pending: { identifier: Identifier; reason: string }[] = extracted.blocked.map((identifier) => ({
      identifier,
      reason: "blocklisted",
    }));

    // Identity verification: with it on, only a verified event (valid userHash, or the site's
    // secret) may name a person; otherwise anyone holding the public write key could attach
    // their browser to someone else's profile. The anonymous id still counts the visit.
    const unverified = site.verification && !event.verified;
    if (unverified) {
      for (const identifier of identifiers) {
        if (identifier.type !== "anonymous_id") pending.push({ identifier, reason: "unverified" });
      }
      identifiers = identifiers.filter((id) => id.type === "anonymous_id");
    }
    if (identifiers.length === 0) {
      for (const p of pending) warn(null, event.messageId, p.identifier, p.reason);
      plan.counts.dropped++;
      continue;
    }

    const link = decideLink(identifiers, graph, targetOf, site.policy);
    const linked = link.profiles.map(holderOf);
    let holder = linked.length > 0 ? [...linked].sort(older)[0] : create();
    for (const other of linked) {
      if (other === holder) continue;
      const cause = identifiers.find((id) => graph.ownerOf(id) === other.profile.id) ?? identifiers[0];
      merge(holder, other, event, cause);
    }
    holder = holderOf(graph.find(holder.profile.id));
    for (const p of [...pending, ...link.refused]) warn(holder.profile.id, event.messageId, p.identifier, p.reason);

    for (const id of link.fresh) {
      graph.attach(id, holder.profile.id);
      if (holder.counts) holder.counts[id.type] = (holder.counts[id.type] ?? 0) + 1;
      holder.identities?.push(id);
      plan.identities.push({ identifier: id, profileId: holder.profile.id, messageId: event.messageId });
      const hash = state.hashes.get(keyOf(id));
      if (hash) plan.attachedHashes.push(hash);
      if ((id.type === "user_id" || id.type === "email") && !holder.profile.identified) {
        holder.profile.identified = true;
        holder.changed.add("identified");
      }
      if (id.type === "email" && !holder.profile.email) {
        holder.profile.email = id.value;
        holder.changed.add("email");
      }
    }

    applyToProfile(holder, siteId, event, scope, unverified && holder.profile.identified);
    if (event.type === "group" && event.groupId) {
      const traits = plan.groups.get(event.groupId) ?? {};
      plan.groups.set(event.groupId, { ...traits, ...event.traits });
      holder.profile.companyId = event.groupId;
      holder.changed.add("companyId");
    }
    plan.events.push({ siteId, event, profileId: holder.profile.id });
  }

  // Events keep the profile they landed on when it is stored (a merged-away id resolves through
  // merged_into); a profile created here and folded into another in the same batch never existed.
  plan.events = plan.events.map((e) => {
    const h = holders.get(e.profileId) as Holder;
    return h.isNew ? { ...e, profileId: graph.find(e.profileId) } : e;
  });
  plan.identities = plan.identities.map((i) => ({ ...i, profileId: graph.find(i.profileId) }));
  for (const w of plan.warnings) if (w.profileId) w.profileId = graph.find(w.profileId);

  for (const h of holders.values()) {
    const live = graph.find(h.profile.id) === h.profile.id;
    if (!h.isNew && (h.dirty || !live)) plan.expectations.push([h.profile.id, h.readUpdatedAt as number]);
    if (!live || !h.dirty) continue;
    if (compactCounters(h.profile.counters, scope)) h.changed.add("counters");
    if (h.isNew) plan.created.push(h);
    else {
      h.profile.updatedAt = Math.max(now, h.profile.updatedAt + 1);
      plan.updated.push(h);
    }
    plan.deltas.push({
      profileId: h.profile.id,
      traits: h.profile.traits,
      computed: h.profile.computed,
      counters: h.profile.counters,
      changedTraits: [...h.changedTraits],
      events: h.events,
      isNew: h.isNew,
      rebuilt: h.mergedFrom.length > 0,
    });
  }
  return plan;
}

/** Applies one event's traits, computed traits and counters to its profile. */
function applyToProfile(
  holder: Holder,
  siteId: string,
  event: NormalizedEvent,
  scope: CounterScope,
  traitsLocked: boolean,
): void {
  const p = holder.profile;
  holder.dirty = true;
  holder.events.push(event);
  applyEvent(p.computed, event);
  holder.changed.add("computed");
  if (countEvent(p.counters, scope, event)) holder.changed.add("counters");
  if (p.firstSeenAt === null || event.timestamp < p.firstSeenAt) {
    p.firstSeenAt = event.timestamp;
    holder.changed.add("firstSeenAt");
  }
  if (p.lastSeenAt === null || event.timestamp > p.lastSeenAt) {
    p.lastSeenAt = event.timestamp;
    holder.changed.add("lastSeenAt");
  }
  const incoming = traitsOf(event);
  if (traitsLocked || Object.keys(incoming).length === 0) return;
  const changed = applyTraits({ traits: p.traits, meta: p.traitMeta }, incoming, {
    t: event.timestamp,
    s: siteId,
    m: event.messageId,
  });
  holder.changed.add("traitMeta");
  if (changed.length === 0) return;
  for (const name of changed) holder.changedTraits.add(name);
  holder.changed.add("traits");
  const email = typeof p.traits.email === "string" ? p.traits.email.trim().toLowerCase().slice(0, 254) : null;
  if (email && email !== p.email) {
    p.email = email;
    holder.changed.add("email");
  }
  const name = displayName(p.traits);
  if (name !== p.name) {
    p.name = name;
    holder.changed.add("name");
  }
}
