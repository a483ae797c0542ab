/**
 * Hostile-JSON hygiene for one message: bounded depth, bounded strings/arrays/objects, and no
 * prototype-polluting keys, producing fresh plain objects. Runs once per message, before zod, so
 * that nothing downstream (trait merges, `Object.assign`, spreads) ever sees `__proto__`.
 */
import { MAX_KEY, MAX_STRING } from "../wire/events";

/** A message nested deeper than this (the message object itself is level 1) is rejected. */
export const MAX_DEPTH = 10;
export const MAX_ARRAY = 1_000;
export const MAX_OBJECT_KEYS = 1_000;

// JSON.parse creates `__proto__` as an own property, which is harmless until a later merge copies
// it with `Object.assign`/`obj[key] = v` and swaps a prototype (the prototype-pollution class of
// bugs behind deep-merged traits). `constructor`/`prototype` open the same door via `a[k][j] = v`.
const FORBIDDEN_KEYS = new Set(["__proto__", "constructor", "prototype"]);

class Unsafe extends Error {}

// Strings made only of these characters serialise as themselves between quotes, one byte each.
const PLAIN_JSON = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** Bytes of `JSON.stringify(s)` in UTF-8, without serialising the common (plain ASCII) case. */
function jsonStringBytes(s: string): number {
  return PLAIN_JSON.test(s) ? s.length + 2 : utf8Length(JSON.stringify(s));
}

/**
 * Copies `value` safely, adding to `size.bytes` the UTF-8 length of its JSON serialisation, so
 * the 32 KB message limit is checked without serialising every message a second time.
 */
function clean(value: unknown, depth: number, size: { bytes: number }): unknown {
  if (typeof value === "string") {
    if (value.length > MAX_STRING) throw new Unsafe(`a string is longer than ${MAX_STRING} characters`);
    size.bytes += jsonStringBytes(value);
    return value;
  }
  if (value === null || typeof value !== "object") {
    // Numbers, booleans and null; `undefined` (not JSON, but possible in an array) prints as null.
    size.bytes += (JSON.stringify(value) ?? "null").length;
    return value;
  }
  if (depth > MAX_DEPTH) throw new Unsafe(`nested deeper than ${MAX_DEPTH} levels`);
  if (Array.isArray(value)) {
    if (value.length > MAX_ARRAY) throw new Unsafe(`an array has more than ${MAX_ARRAY} items`);
    size.bytes += 2 + Math.max(0, value.length - 1);
    return value.map((item) => clean(item, depth + 1, size));
  }
  const keys = Object.keys(value);
  if (keys.length > MAX_OBJECT_KEYS) throw new Unsafe(`an object has more than ${MAX_OBJECT_KEYS} keys`);
  const out: Record<string, unknown> = {};
  let members = 0;
  for (const key of keys) {
    if (FORBIDDEN_KEYS.has(key)) continue;
    if (key.length > MAX_KEY) throw new Unsafe(`a key is longer than ${MAX_KEY} characters`);
    const item = (value as Record<string, unknown>)[key];
    // JSON.stringify leaves out object members whose value is undefined.
    if (item !== undefined) {
      size.bytes += jsonStringBytes(key) + 1;
      members++;
    }
    out[key] = item === undefined ? undefined : clean(item, depth + 1, size);
  }
  size.bytes += 2 + Math.max(0, members - 1);
  return out;
}

export type Sanitized =
  | {
      ok: true;
      value: Record<string, unknown>;
      /** UTF-8 bytes of `JSON.stringify(value)`. */
      bytes: number;
    }
  | { ok: false; reason: string };

/** Rebuilds a parsed JSON object as safe plain data, or says why it cannot be accepted. */
export function sanitizeObject(value: unknown): Sanitized {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return { ok: false, reason: "not a JSON object" };
  }
  const size = { bytes: 0 };
  try {
    return { ok: true, value: clean(value, 1, size) as Record<string, unknown>, bytes: size.bytes };
  } catch (err) {
    if (err instanceof Unsafe) return { ok: false, reason: err.message };
    throw err;
  }
}

const NON_ASCII = /[\u0080-\uffff]/;
const encoder = new TextEncoder();

/** Bytes of `s` in UTF-8. Most payloads are ASCII, where a native regex scan answers without encoding. */
export function utf8Length(s: string): number {
  return NON_ASCII.test(s) ? encoder.encode(s).byteLength : s.length;
}

/**
 * JSON of an untrusted value cut to about `maxChars`, for the rejected-events store. It never
 * recurses past a fixed depth, so a message rejected for being 100,000 levels deep cannot blow
 * the stack while being recorded.
 */
export function boundedJson(value: unknown, maxChars: number): string {
  const parts: string[] = [];
  let length = 0;
  const push = (s: string) => {
    parts.push(s);
    length += s.length;
  };
  const walk = (v: unknown, depth: number) => {
    if (length > maxChars) return;
    if (typeof v === "string") return push(JSON.stringify(v.length > maxChars ? v.slice(0, maxChars) : v));
    if (v === null || typeof v !== "object") return push(JSON.stringify(v) ?? "null");
    if (depth > MAX_DEPTH + 2) return push('"[too deep]"');
    if (Array.isArray(v)) {
      push("[");
      for (let i = 0; i < v.length && length <= maxChars; i++) {
        if (i > 0) push(",");
        walk(v[i], depth + 1);
      }
      return push("]");
    }
    push("{");
    let first = true;
    for (const key of Object.keys(v)) {
      if (length > maxChars) break;
      push(`${first ? "" : ","}${JSON.stringify(key.slice(0, MAX_KEY))}:`);
      first = false;
      walk((v as Record<string, unknown>)[key], depth + 1);
    }
    push("}");
  };
  walk(value, 1);
  const json = parts.join("");
  return json.length > maxChars ? `${json.slice(0, maxChars)}…[truncated]` : json;
}
