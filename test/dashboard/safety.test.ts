/// <reference types="vite/client" />
import { describe, expect, it } from "vitest";

// Every source file of the dashboard client, as text (Vite inlines them at transform time).
const sources = import.meta.glob("../../dashboard/**/*.{ts,tsx}", {
  query: "?raw",
  import: "default",
  eager: true,
}) as Record<string, string>;

// Sinks that parse strings as HTML or code. Tracked data is attacker-controlled (stored XSS through
// tracked URLs and user agents is this product category's history), so the client has none of them.
const forbidden: [string, RegExp][] = [
  ["innerHTML", /innerHTML/],
  ["outerHTML", /outerHTML/],
  ["dangerouslySetInnerHTML", /dangerouslySetInnerHTML/],
  ["insertAdjacentHTML", /insertAdjacentHTML/],
  ["document.write", /document\.write/],
  ["eval", /\beval\s*\(/],
  ["new Function", /new\s+Function\s*\(/],
  ["a javascript: URL", /javascript:/i],
  ["string timers", /set(Timeout|Interval)\(\s*["'`]/],
];

describe("the dashboard client source", () => {
  it("is found by the scan", () => {
    expect(Object.keys(sources).length).toBeGreaterThan(5);
    expect(Object.keys(sources).some((p) => p.endsWith("dashboard/index.tsx"))).toBe(true);
  });

  for (const [name, pattern] of forbidden) {
    it(`never uses ${name}`, () => {
      const offenders = Object.entries(sources)
        .filter(([, text]) => pattern.test(text))
        .map(([path]) => path);
      expect(offenders).toEqual([]);
    });
  }

  it("opens every external link without opener or referrer", () => {
    for (const [path, text] of Object.entries(sources)) {
      for (const tag of text.match(/<a\b[^>]*target="_blank"[^>]*>/g) ?? []) {
        expect(tag, path).toContain('rel="noopener noreferrer nofollow"');
      }
    }
  });
});
