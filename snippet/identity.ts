// Who the visitor is: the anonymous id (cookie mirrored in localStorage), the user id once known,
// and the session.
import { type Session, session } from "./rules";
import { cookie, get, load, set, setCookie } from "./storage";

const A = "tsr_aid";
const U = "tsr_uid";
const S = "tsr_sid";

/** The anonymous id; "" until identity is started (consent) and after a wipe. */
export let aid = "";
/** The user id from identify or alias; "" when unknown. */
export let uid = "";
/** The userHash given with identify for the current user id (identity verification). Kept in
 * memory only: it is a bearer credential for the user id, and the site renders it on every page. */
export let hash: string | undefined;

/** A random id: a UUID where the browser offers one (secure contexts), else random base-36. */
export const uuid = () => {
  try {
    return crypto.randomUUID();
  } catch {
    return Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
  }
};

// Rewrites both copies on every load: this also renews the cookie, which Safari expires after
// seven days when a script sets it.
const keep = (a: string) => {
  aid = a;
  setCookie(A, a, 31536e3);
  set(A, a);
};

/** Loads the identifiers; when the cookie and localStorage disagree, the cookie wins. */
export const start = () => {
  keep(cookie(A) || get(A) || uuid());
  uid = get(U) || "";
};

/** Remembers the user id, and its userHash when given; a new user id drops the old hash. */
export const user = (u: string, h?: string) => {
  if (h || u !== uid) hash = h;
  uid = u;
  set(U, u);
};

/** Logout: a new anonymous id, no user, no session. */
export const reset = () => {
  keep(uuid());
  user("");
  set(U);
  set(S);
};

/** The session id, counting this call as activity (shared by the site's tabs). */
export const sid = () => {
  const s = session(load<Session>(S), Date.now(), uuid);
  set(S, JSON.stringify(s));
  return s[0];
};

/** Forgets every identifier, in memory, localStorage and the cookie. */
export const wipe = () => {
  setCookie(A, "", 0);
  user("");
  for (const k of [A, U, S]) set(k);
  aid = "";
};
