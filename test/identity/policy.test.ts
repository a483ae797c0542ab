import { describe, expect, it } from "vitest";
import { extractIdentifiers } from "../../worker/identity/extract";
import { identityPolicySchema, isBlocked, normalizeIdentifier, resolvePolicy } from "../../worker/identity/policy";
import { identify } from "../pipeline/factory";

describe("identifier normalisation", () => {
  it("trims and lower-cases emails and refuses what is not an email", () => {
    expect(normalizeIdentifier("email", "  Ada@Example.COM ")).toBe("ada@example.com");
    expect(normalizeIdentifier("email", "not-an-email")).toBeNull();
  });

  it("writes phone numbers in E.164 when they carry a country code, digits only otherwise", () => {
    expect(normalizeIdentifier("phone", "+1 (555) 123-4567")).toBe("+15551234567");
    expect(normalizeIdentifier("phone", "0047 22 33 44 55")).toBe("+4722334455");
    expect(normalizeIdentifier("phone", "555.123.4567")).toBe("5551234567");
    expect(normalizeIdentifier("phone", "12-34")).toBeNull();
  });

  it("blocks default junk values, per-site values and all-zero values, whatever their case", () => {
    const policy = resolvePolicy({ blocklist: ["Test-User"] });
    for (const value of [
      "NULL",
      "undefined",
      "0",
      "-1",
      "Anonymous",
      "guest",
      "[object Object]",
      "NaN",
      "test-user",
      "000-000",
    ]) {
      expect(isBlocked(policy, value), value).toBe(true);
    }
    expect(isBlocked(policy, "u_42")).toBe(false);
  });
});

describe("identity policy", () => {
  it("keeps defaults for built-in types and adds declared custom types", () => {
    const policy = resolvePolicy({ types: { crm_id: { limit: 1, priority: 2 }, email: { limit: 3 } } });
    expect(policy.types.user_id).toEqual({ limit: 1, priority: 1 });
    expect(policy.types.email).toEqual({ limit: 3, priority: 2 });
    expect(policy.types.crm_id).toEqual({ limit: 1, priority: 2 });
  });

  it("rejects unknown keys, bad type names and oversized blocklists", () => {
    expect(identityPolicySchema.safeParse({ extra: 1 }).success).toBe(false);
    expect(identityPolicySchema.safeParse({ types: { "Bad Name": {} } }).success).toBe(false);
    expect(identityPolicySchema.safeParse({ blocklist: Array(501).fill("x") }).success).toBe(false);
  });

  it("extracts identifiers from ids, traits, context.traits and externalIds, once each", () => {
    const policy = resolvePolicy({ types: { crm_id: {} } });
    const { identifiers } = extractIdentifiers(
      identify({
        anonymousId: "a1",
        userId: "u1",
        traits: { email: "A@x.io", crm_id: "c1" },
        context: { traits: { email: "a@x.io", phone: "+47 22 33 44 55" }, externalIds: [{ type: "crm_id", id: "c2" }] },
      }),
      policy,
    );
    expect(identifiers.map((i) => `${i.type}:${i.value}`).sort()).toEqual([
      "anonymous_id:a1",
      "crm_id:c1",
      "crm_id:c2",
      "email:a@x.io",
      "phone:+4722334455",
      "user_id:u1",
    ]);
  });
});
