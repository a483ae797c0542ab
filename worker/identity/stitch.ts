/**
 * Stitching decisions, in memory: which profiles an event's identifiers link, under the site's
 * policy. Profiles merged during a batch form a union-find (`find` follows a profile to the one
 * it was merged into).
 *
 * The rule (Segment's, see README "Identity"): identifiers are taken in priority order (user_id
 * first); each one either is already on the linked set, or joins it — a new identifier attaches,
 * an identifier on another profile merges that profile in — unless joining would break a limit
 * (two user_ids, more than 5 emails, the merge cap, …), in which case that identifier is refused
 * and reported, and the rest go on. The highest-priority identifier always decides the profile, so
 * on a shared browser the second person's user_id starts their own profile and the browser's
 * anonymous_id stays with the profile it already belongs to.
 */
import { type Identifier, keyOf } from "./extract";
import { type IdentityPolicy, MAX_IDENTIFIERS_PER_PROFILE, MAX_MERGES_PER_PROFILE, ruleOf } from "./policy";

/** What the link decision needs to know about a profile. */
export interface LinkTarget {
  id: string;
  /** Identifiers per type it holds (loaded whenever a link could change it). */
  counts?: Record<string, number>;
  /** Merges it has absorbed so far (a profile created in this batch counts none). */
  mergeCount: number;
  /** False for a profile created in this batch: folding it in is not a merge of two people. */
  existing: boolean;
}

export interface Refusal {
  identifier: Identifier;
  reason: string;
}

export interface LinkDecision {
  /** Live profiles the event links (first one = the highest-priority identifier's). */
  profiles: string[];
  /** Identifiers not yet on any profile, to attach. */
  fresh: Identifier[];
  refused: Refusal[];
}

/** Union-find over profile ids, plus the identifier → profile map as the batch changes it. */
export class IdentityGraph {
  private readonly parent = new Map<string, string>();
  constructor(private readonly owners: Map<string, string>) {}

  find(id: string): string {
    let root = id;
    while (this.parent.has(root)) root = this.parent.get(root) as string;
    // Path compression keeps later finds O(1).
    let node = id;
    while (node !== root) {
      const next = this.parent.get(node) as string;
      this.parent.set(node, root);
      node = next;
    }
    return root;
  }

  union(loser: string, winner: string): void {
    this.parent.set(this.find(loser), this.find(winner));
  }

  /** The live profile an identifier belongs to, if any. */
  ownerOf(id: Identifier): string | undefined {
    const owner = this.owners.get(keyOf(id));
    return owner === undefined ? undefined : this.find(owner);
  }

  has(key: string): boolean {
    return this.owners.has(key);
  }

  attach(id: Identifier, profileId: string): void {
    this.owners.set(keyOf(id), profileId);
  }
}

function countsOf(target: LinkTarget): Record<string, number> {
  // Loading is planned from the read (pipeline/read.ts); reaching this is a bug, not bad input.
  if (!target.counts) throw new Error(`identity counts of ${target.id} were not loaded`);
  return target.counts;
}

/**
 * Why a profile holding `counts` identifiers per type would break the policy (`limit:<type>`,
 * `identifier_cap`), or null when it would not.
 */
export function limitBreach(policy: IdentityPolicy, counts: Record<string, number>): string | null {
  let total = 0;
  for (const [type, n] of Object.entries(counts)) {
    total += n;
    if (n > (ruleOf(policy, type)?.limit ?? MAX_IDENTIFIERS_PER_PROFILE)) return `limit:${type}`;
  }
  return total > MAX_IDENTIFIERS_PER_PROFILE ? "identifier_cap" : null;
}

/** Priority order; ties keep the event's own order (userId before an alias's previousId). */
const byPriority = (policy: IdentityPolicy, identifiers: Identifier[]) => (a: Identifier, b: Identifier) =>
  (ruleOf(policy, a.type)?.priority ?? 99) - (ruleOf(policy, b.type)?.priority ?? 99) ||
  identifiers.indexOf(a) - identifiers.indexOf(b);

/** Decides how one event's identifiers link (pure: reads the graph, changes nothing). */
export function decideLink(
  identifiers: Identifier[],
  graph: IdentityGraph,
  targetOf: (profileId: string) => LinkTarget,
  policy: IdentityPolicy,
): LinkDecision {
  const profiles: string[] = [];
  const fresh: Identifier[] = [];
  const refused: Refusal[] = [];
  let counts: Record<string, number> = {};
  let merges = 0;

  const exceeded = (next: Record<string, number>) => limitBreach(policy, next);

  for (const id of [...identifiers].sort(byPriority(policy, identifiers))) {
    const owner = graph.ownerOf(id);
    if (owner !== undefined && profiles.includes(owner)) continue;
    if (owner !== undefined && profiles.length === 0 && fresh.length === 0) {
      // The first identifier picks the profile as it is; nothing to check.
      const target = targetOf(owner);
      profiles.push(owner);
      merges = target.mergeCount;
      if (target.counts) counts = { ...target.counts };
      continue;
    }
    if (owner !== undefined) {
      const target = targetOf(owner);
      const theirs = countsOf(target);
      if (profiles.length === 1 && Object.keys(counts).length === 0) counts = { ...countsOf(targetOf(profiles[0])) };
      const next = { ...counts };
      for (const [type, n] of Object.entries(theirs)) next[type] = (next[type] ?? 0) + n;
      const nextMerges = merges + target.mergeCount + (target.existing ? 1 : 0);
      const reason = exceeded(next) ?? (nextMerges > MAX_MERGES_PER_PROFILE ? "merge_cap" : null);
      if (reason) {
        refused.push({ identifier: id, reason });
        continue;
      }
      profiles.push(owner);
      counts = next;
      merges = nextMerges;
      continue;
    }
    if (profiles.length === 1 && Object.keys(counts).length === 0) counts = { ...countsOf(targetOf(profiles[0])) };
    const next = { ...counts, [id.type]: (counts[id.type] ?? 0) + 1 };
    const reason = exceeded(next);
    if (reason) {
      refused.push({ identifier: id, reason });
      continue;
    }
    fresh.push(id);
    counts = next;
  }
  return { profiles, fresh, refused };
}
