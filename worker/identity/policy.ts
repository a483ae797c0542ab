/**
 * Identity policies: which identifier types exist, how each is normalised, how many of each one
 * profile may hold, which wins a conflict, and which values never identify anyone.
 *
 * Priority follows Segment's convention: 1 is the highest. When a link would break a limit, the
 * identifiers of the lowest priority (largest number) are the ones dropped.
 */
import { z } from "zod";

export const builtinTypes = ["user_id", "email", "phone", "anonymous_id"] as const;
export type BuiltinType = (typeof builtinTypes)[number];

/** An identifier type name: built-in or declared by a site (`crm_id`, `shopify_id`, …). */
export const identifierType = z
  .string()
  .regex(/^[a-z][a-z0-9_]{0,31}$/, "lower-case letters, digits and _; starts with a letter; ≤ 32 chars");

const typeRule = z.object({
  /** Identifiers of this type one profile may hold; omitted = unlimited. */
  limit: z.number().int().min(1).max(1000).optional(),
  priority: z.number().int().min(1).max(100).optional(),
});

/** The JSON kept in `sites.identity_policy` (and the body of `PUT /api/sites/:id/identity-policy`). */
export const identityPolicySchema = z
  .object({
    /** Custom types to declare, or overrides of a built-in type's limit/priority. */
    types: z
      .record(identifierType, typeRule)
      .refine((types) => Object.keys(types).length <= 20, "At most 20 types")
      .default({}),
    /** Values that never identify anyone, added to the defaults (compared case-insensitively). */
    blocklist: z.array(z.string().trim().min(1).max(200)).max(500).default([]),
  })
  .strict()
  .superRefine((policy, ctx) => {
    // One person has one user id: raising this limit would let two people fuse into one profile.
    const userId = policy.types.user_id;
    if (userId?.limit !== undefined && userId.limit !== 1) {
      ctx.addIssue({ code: "custom", path: ["types", "user_id", "limit"], message: "user_id's limit is always 1" });
    }
  });

export type IdentityPolicyInput = z.output<typeof identityPolicySchema>;

export interface TypeRule {
  limit: number;
  priority: number;
}

/** A site's effective policy: defaults with its overrides applied. */
export interface IdentityPolicy {
  types: Record<string, TypeRule>;
  blocklist: Set<string>;
}

/** Most identifiers one profile may hold in total (Segment caps at 1,000 too). */
export const MAX_IDENTIFIERS_PER_PROFILE = 1000;
/** Most merges one profile may absorb; further merges are refused with a warning. */
export const MAX_MERGES_PER_PROFILE = 100;
const CUSTOM_PRIORITY = 4;

const defaultTypes: Record<BuiltinType, TypeRule> = {
  user_id: { limit: 1, priority: 1 },
  email: { limit: 5, priority: 2 },
  phone: { limit: 5, priority: 3 },
  anonymous_id: { limit: MAX_IDENTIFIERS_PER_PROFILE, priority: 5 },
};

/** Junk that clients send instead of an id (stringified nulls, placeholders, failed casts). */
export const defaultBlocklist = [
  "null",
  "undefined",
  "0",
  "-1",
  "anonymous",
  "guest",
  "[object object]",
  "nan",
  "none",
  "",
];

/** Builds the effective policy from the stored JSON; anything unparseable falls back to defaults. */
export function resolvePolicy(stored: unknown): IdentityPolicy {
  const parsed = identityPolicySchema.safeParse(stored ?? {});
  const input: IdentityPolicyInput = parsed.success ? parsed.data : { types: {}, blocklist: [] };
  const types: Record<string, TypeRule> = { ...defaultTypes };
  for (const [name, rule] of Object.entries(input.types)) {
    const base = types[name] ?? { limit: MAX_IDENTIFIERS_PER_PROFILE, priority: CUSTOM_PRIORITY };
    types[name] = { limit: rule.limit ?? base.limit, priority: rule.priority ?? base.priority };
  }
  return { types, blocklist: new Set([...defaultBlocklist, ...input.blocklist.map((v) => v.toLowerCase())]) };
}

export const defaultPolicy = resolvePolicy({});

/**
 * The strictest limit and priority per type over several sites' effective policies (defaults when
 * there are none): what a merge that no single event's site decides — a manual one — respects.
 */
export function strictestPolicy(policies: IdentityPolicy[]): IdentityPolicy {
  if (policies.length === 0) return defaultPolicy;
  const types: Record<string, TypeRule> = {};
  for (const policy of policies) {
    for (const [name, rule] of Object.entries(policy.types)) {
      const seen = types[name];
      types[name] = seen
        ? { limit: Math.min(seen.limit, rule.limit), priority: Math.min(seen.priority, rule.priority) }
        : { ...rule };
    }
  }
  return { types, blocklist: new Set(policies.flatMap((p) => [...p.blocklist])) };
}

const emailShape = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/**
 * Normalises a raw identifier value for its type; null when it cannot identify anyone
 * (wrong shape, too long, empty).
 */
export function normalizeIdentifier(type: string, raw: unknown): string | null {
  if (typeof raw !== "string" && typeof raw !== "number") return null;
  const value = String(raw).trim();
  if (value === "" || value.length > 200) return null;
  switch (type) {
    case "email": {
      const email = value.toLowerCase();
      return email.length <= 254 && emailShape.test(email) ? email : null;
    }
    case "phone":
      return normalizePhone(value);
    default:
      return value;
  }
}

/**
 * E.164 where the input says so: separators dropped, a leading `+` (or the international `00`
 * prefix) kept as `+`. Without either, the country is unknown, so the digits are kept as they are
 * (a national number); 7–15 digits, as E.164 allows.
 */
export function normalizePhone(value: string): string | null {
  const compact = value.replace(/[\s\-().]/g, "");
  const international = compact.startsWith("+") || compact.startsWith("00");
  const digits = compact.startsWith("+") ? compact.slice(1) : compact.startsWith("00") ? compact.slice(2) : compact;
  if (!/^\d{7,15}$/.test(digits)) return null;
  return international ? `+${digits}` : digits;
}

/** True when a normalised value is on the site's blocklist (or is only zeros and dashes). */
export function isBlocked(policy: IdentityPolicy, value: string): boolean {
  const lower = value.toLowerCase();
  return policy.blocklist.has(lower) || /^\+?[0-]+$/.test(lower);
}

/** Rule for a type; undeclared custom types are not identifiers for this site. */
export function ruleOf(policy: IdentityPolicy, type: string): TypeRule | undefined {
  return policy.types[type];
}
