import type { TrackedEvent } from "./api";

/**
 * Pure helpers for turning untrusted values into display text. Nothing here builds HTML: JSX
 * escapes every string it renders, and these functions only decide *which* string.
 */

/**
 * A URL from tracked or imported data, usable as an `href` only when its scheme is http or https
 * (after the browser's own parsing, which strips tabs and newlines the way navigation would).
 * Script, data and vbscript schemes and relative tricks return null and are shown as text.
 */
export function safeHref(value: unknown): string | null {
  if (typeof value !== "string" || value.length > 2048) return null;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return null;
  }
  return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
}

/** Any value as one line of text (objects as compact JSON), cut to `max` characters. */
export function text(value: unknown, max = 200): string {
  let s: string;
  if (value === null || value === undefined) s = "";
  else if (typeof value === "string") s = value;
  else if (typeof value === "number" || typeof value === "boolean") s = String(value);
  else {
    try {
      s = JSON.stringify(value) ?? "";
    } catch {
      s = String(value);
    }
  }
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/** Pretty JSON for the debugger and the raw views (rendered as text, never parsed as HTML). */
export function prettyJson(value: unknown): string {
  try {
    return JSON.stringify(value, null, 2) ?? "";
  } catch {
    return String(value);
  }
}

/** An ISO string or epoch ms as a short local date-time; anything unparseable as its text. */
export function dateTime(value: unknown): string {
  if (value === null || value === undefined || value === "") return "";
  const d = new Date(typeof value === "number" || typeof value === "string" ? value : Number.NaN);
  if (Number.isNaN(d.getTime())) return text(value, 40);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** "3 min ago"-style relative time, for lists. */
export function ago(value: unknown, now = Date.now()): string {
  const t = typeof value === "string" || typeof value === "number" ? new Date(value).getTime() : Number.NaN;
  if (Number.isNaN(t)) return "";
  const s = Math.round((now - t) / 1000);
  if (s < 45) return "just now";
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  if (s < 86400 * 30) return `${Math.round(s / 86400)} d ago`;
  return dateTime(t);
}

/** Thousands separators. */
export function num(value: unknown): string {
  return typeof value === "number" && Number.isFinite(value) ? value.toLocaleString() : "—";
}

/** A percentage with one decimal, or "—" when the denominator is zero. */
export function pct(part: number, whole: number): string {
  return whole > 0 ? `${((part / whole) * 100).toFixed(1)}%` : "—";
}

/** The best human label for a contact: name, email, then id. */
export function displayName(p: {
  name?: unknown;
  email?: unknown;
  id?: unknown;
  traits?: Record<string, unknown>;
}): string {
  const t = p.traits ?? {};
  const name = p.name ?? t.name ?? ([t.firstName, t.lastName].filter(Boolean).join(" ") || undefined);
  return text(name || p.email || t.email || p.id || "Unknown", 80);
}

/** `<datetime-local>` value (local time, minutes) from an ISO string, and back. */
export function toLocalInput(iso: string | null | undefined): string {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function fromLocalInput(value: string): string | null {
  if (!value) return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

/** Splits a comma- or newline-separated list, trimming and dropping empties. */
export function splitList(value: string): string[] {
  return value
    .split(/[\n,]/)
    .map((s) => s.trim())
    .filter(Boolean);
}

/**
 * A poll's events (newest first, as the feed sends them) above the ones already listed, without
 * duplicates (a poll may overlap the previous one), bounded.
 */
export function mergeLatest(current: TrackedEvent[], incoming: TrackedEvent[], keep = 200): TrackedEvent[] {
  const seen = new Set(current.map((e) => `${e.siteId ?? ""}/${e.messageId}`));
  const fresh = incoming.filter((e) => !seen.has(`${e.siteId ?? ""}/${e.messageId}`));
  return [...fresh, ...current].slice(0, keep);
}

/** Fills missing days with zeros so the chart's x axis is real time. */
export function lastDays(
  points: { day: string; count: number }[],
  days = 30,
  now = new Date(),
): { label: string; value: number }[] {
  const byDay = new Map(points.map((p) => [p.day.slice(0, 10), p.count]));
  const out: { label: string; value: number }[] = [];
  for (let i = days - 1; i >= 0; i--) {
    const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() - i));
    const key = d.toISOString().slice(0, 10);
    out.push({ label: key, value: byDay.get(key) ?? 0 });
  }
  return out;
}
