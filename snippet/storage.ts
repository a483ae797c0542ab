// First-party storage: localStorage (a plain object where the browser denies it) and the
// anonymous-id cookie on the registrable domain.

/** localStorage, read and written through named properties (they minify smaller than getItem). */
export let ls: Record<string, string | undefined> = {};
try {
  ls = localStorage as unknown as typeof ls;
} catch {}

/** Writes a key; without `v`, empties it (what is left holds no identifier). A full or read-only
 * storage loses the write: the page keeps what matters (the ids) in memory, and tracking goes on. */
export const set = (k: string, v = "") => {
  try {
    ls[k] = v;
  } catch {}
};

/** Reads JSON this snippet stored under `k`; undefined when absent or unreadable. */
export const load = <T>(k: string): T | undefined => {
  try {
    return JSON.parse(ls[k] as string);
  } catch {}
};

/** Reads the anonymous-id cookie. */
export const cookie = () => (document.cookie.match(/(^|; )tsr_aid=([^;]*)/) || [])[2];

// The cookie's domain, found once per page by probing; "" means host-only (browsers ignore an
// empty Domain attribute).
let dom: string | undefined;

// One year; "" deletes the cookie. Not `Secure`: the id is no credential (like analytics
// cookies generally), and the attribute would cost bytes in every page's script.
const put = (v: string, d = dom) => {
  // biome-ignore lint/suspicious/noDocumentCookie: the Cookie Store API is missing from Firefox and older Safari
  document.cookie = `tsr_aid=${v};path=/;max-age=${v ? 31536e3 : 0};samesite=lax;domain=${d}`;
};

/** Writes the anonymous-id cookie (or deletes it when `v` is "") on the registrable domain, so
 * that every subdomain of the site shares it. */
export const setCookie = (v: string) => {
  // Browsers refuse a cookie on a public suffix (com, co.uk, github.io), so the shortest domain
  // that takes a probe is the registrable one. The probe's value is fresh, so an older cookie of
  // the same name cannot pass for it, and the real write below replaces it. IP addresses and
  // localhost take none: dom ends as "" (host-only).
  if (dom == null)
    for (let p = location.hostname.split("."), i = p.length, t = `${Math.random()}`; i--; dom = "")
      if ((put(t, (dom = p.slice(i).join("."))), document.cookie.includes(t))) break;
  put(v);
};
