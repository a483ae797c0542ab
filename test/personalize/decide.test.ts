import { describe, expect, it } from "vitest";
import { decideSlot, holdoutBucket, type Visitor } from "../../worker/personalize/decide";
import type { SlotDefinition } from "../../worker/personalize/slots";

const NOW = Date.parse("2026-05-01T12:00:00Z");

function makeSlot(overrides: Partial<SlotDefinition> = {}): SlotDefinition {
  return {
    key: "hero",
    default: "Welcome",
    rules: [
      { id: "r-vip", segment: "vip", content: "Hello VIP" },
      { id: "r-trial", segment: "trial", content: { headline: "Upgrade" } },
    ],
    holdout: 0,
    startsAt: null,
    endsAt: null,
    goalEvent: null,
    createdAt: NOW,
    updatedAt: NOW,
    ...overrides,
  };
}

function visitor(segments: string[], profileId: string | null = "prf_1"): Visitor {
  return { profileId, segments: new Set(segments), publicSegments: [] };
}

describe("decideSlot", () => {
  it("gives the first matching rule when the visitor is in several segments", () => {
    const d = decideSlot(makeSlot(), visitor(["trial", "vip"]), NOW);
    expect(d).toMatchObject({ variant: "r-vip", content: "Hello VIP", heldOut: false });
  });

  it("follows the rule order, not the segment order", () => {
    const slot = makeSlot({ rules: [...makeSlot().rules].reverse() });
    expect(decideSlot(slot, visitor(["vip", "trial"]), NOW).variant).toBe("r-trial");
  });

  it("serves JSON object content as is", () => {
    expect(decideSlot(makeSlot(), visitor(["trial"]), NOW).content).toEqual({ headline: "Upgrade" });
  });

  it("falls back to the default when no rule matches", () => {
    const d = decideSlot(makeSlot(), visitor(["other"]), NOW);
    expect(d).toMatchObject({ variant: "default", content: "Welcome", rule: null });
  });

  it("gives the default before the schedule starts", () => {
    const slot = makeSlot({ startsAt: NOW + 1 });
    expect(decideSlot(slot, visitor(["vip"]), NOW)).toMatchObject({ variant: "default", inSchedule: false });
  });

  it("gives the default once the schedule has ended", () => {
    const slot = makeSlot({ startsAt: NOW - 10_000, endsAt: NOW });
    expect(decideSlot(slot, visitor(["vip"]), NOW)).toMatchObject({ variant: "default", inSchedule: false });
  });

  it("applies the rules inside the schedule", () => {
    const slot = makeSlot({ startsAt: NOW - 10_000, endsAt: NOW + 10_000 });
    expect(decideSlot(slot, visitor(["vip"]), NOW)).toMatchObject({ variant: "r-vip", inSchedule: true });
  });

  it("holds out everyone at 100 percent and no one at 0", () => {
    expect(decideSlot(makeSlot({ holdout: 100 }), visitor(["vip"]), NOW)).toMatchObject({
      variant: "holdout",
      content: "Welcome",
      heldOut: true,
    });
    expect(decideSlot(makeSlot({ holdout: 0 }), visitor(["vip"]), NOW).variant).toBe("r-vip");
  });

  it("keeps a visitor in the same holdout group on every call", () => {
    const slot = makeSlot({ holdout: 50 });
    for (let i = 0; i < 50; i++) {
      const v = visitor(["vip"], `prf_${i}`);
      const first = decideSlot(slot, v, NOW).variant;
      for (let j = 0; j < 5; j++) expect(decideSlot(slot, v, NOW + j * 60_000).variant).toBe(first);
    }
  });

  it("holds out roughly the configured share of visitors", () => {
    const slot = makeSlot({ holdout: 20 });
    let held = 0;
    const n = 10_000;
    for (let i = 0; i < n; i++) if (decideSlot(slot, visitor(["vip"], `visitor-${i}`), NOW).heldOut) held++;
    // 20 % of 10,000 with a binomial standard deviation of 40: ±200 is five deviations.
    expect(held).toBeGreaterThan(1_800);
    expect(held).toBeLessThan(2_200);
  });

  it("buckets each slot independently, so one holdout does not imply another", () => {
    let same = 0;
    for (let i = 0; i < 1_000; i++) {
      if (holdoutBucket(`v${i}`, "hero") < 50 === holdoutBucket(`v${i}`, "banner") < 50) same++;
    }
    expect(same).toBeGreaterThan(400);
    expect(same).toBeLessThan(600);
  });

  it("does not hold out a visitor without a profile, who sees the default either way", () => {
    expect(decideSlot(makeSlot({ holdout: 100 }), visitor([], null), NOW).variant).toBe("default");
  });
});
