// Who the visitor is: the anonymous id (cookie mirrored in localStorage), the user id once known,
// and the session.
import { type Session, session } from "./rules";
import { cookie, load, ls, set, setCookie } from "./storage";

/** The anonymous id; "" until identity is started (consent) and after a wipe. */
export let aid = "";
/** The user id from identify or alias; "" when unknown. */
export let uid = "";
/** The userHash given with identify for the current user id (identity verification). Kept in
 * memory only: it is a bearer credential for the user id, and the site renders it on every page. */
export let hash: string | undefined;

/** A random id for messages, visitors and sessions: random digits and the time, in base 36 (what
 * the server needs is uniqueness, not secrecy; crypto.randomUUID exists only on https pages). */
export const uuid = () => Math.random().toString(36).slice(2) + Date.now().toString(36);

// Rewrites both copies on every load: this also renews the cookie, which Safari expires after
// seven days when a script sets it. "" deletes the cookie (and leaves no id in localStorage).
const keep = (a: string) => {
  setCookie((aid = a));
  set("tsr_aid", a);
};

// Drops the user and the session (logout, or consent withdrawn).
const forget = () => {
  uid = "";
  hash = undefined;
  set("tsr_uid");
  set("tsr_sid");
};

/** Loads the identifiers; when the cookie and localStorage disagree, the cookie wins. */
export const start = () => {
  keep(cookie() || ls.tsr_aid || uuid());
  uid = ls.tsr_uid || "";
};

/** Remembers the user id, and its userHash when given; a new user id drops the old hash. */
export const user = (u: string, h?: string) => {
  if (h || u !== uid) hash = h;
  set("tsr_uid", (uid = u));
};

/** Logout: a new anonymous id, no user, no session. */
export const reset = () => {
  keep(uuid());
  forget();
};

/** The session id, counting this call as activity (shared by the site's tabs). */
export const sid = () => {
  const s = session(load<Session>("tsr_sid"), Date.now(), uuid);
  set("tsr_sid", JSON.stringify(s));
  return s[0];
};

/** Forgets every identifier, in memory, localStorage and the cookie. */
export const wipe = () => {
  keep("");
  forget();
};
