// First-party storage: localStorage (memory where the browser denies it) and cookies on the
// registrable domain.
import { domains } from "./rules";

// Every write is mirrored here, so that a page whose storage is blocked, full or read-only (Safari's
// old private mode) keeps its identifiers and session for as long as it lives.
const mem: Record<string, string | undefined> = {};

// Storage is read through named properties, which minify smaller than getItem/setItem.
const ls = () => {
  try {
    return localStorage as unknown as typeof mem;
  } catch {
    return mem;
  }
};

/** Reads a key. */
export const get = (k: string) => {
  const v = ls()[k];
  return v != null ? v : mem[k];
};

/** Writes a key, or removes it when `v` is absent. */
export const set = (k: string, v?: string) => {
  mem[k] = v;
  try {
    v == null ? delete ls()[k] : (ls()[k] = v);
  } catch {}
};

/** Reads JSON this snippet stored under `k`; undefined when absent or unreadable. */
export const load = <T>(k: string): T | undefined => {
  try {
    return JSON.parse(get(k) as string);
  } catch {}
};

/** Reads a cookie. */
export const cookie = (k: string) => {
  const m = document.cookie.match(`(?:^|; )${k}=([^;]*)`);
  return m ? m[1] : undefined;
};

// The cookie domain, found once per page; "" means host-only.
let dom: string | undefined;

const put = (k: string, v: string, age: number, d = dom) => {
  // biome-ignore lint/suspicious/noDocumentCookie: the Cookie Store API is missing from Firefox and older Safari
  document.cookie = `${k}=${v};path=/;max-age=${age};samesite=lax${d ? `;domain=${d}` : ""}${
    location.protocol === "https:" ? ";secure" : ""
  }`;
};

/** Writes a cookie for `age` seconds (0 deletes it) on the registrable domain, so that every
 * subdomain of the site shares it. */
export const setCookie = (k: string, v: string, age: number) => {
  if (dom == null) {
    dom = "";
    // A probe with a fresh value, so that an older cookie of the same name cannot pass for it; it
    // expires by itself a second later.
    const t = `${Math.random()}`;
    for (const d of domains(location.hostname)) {
      put("tsr_t", t, 1, d);
      if (cookie("tsr_t") === t) {
        dom = d;
        break;
      }
    }
  }
  put(k, v, age);
};
