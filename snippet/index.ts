// Tessera's browser snippet. Install:
//   <script async src="https://HOST/s.js" data-key="WRITE_KEY"></script>
// Optional: data-api (defaults to the script's origin), data-consent="required" (opt-in),
// data-auto="false" (no automatic page views: neither the first nor on SPA navigation).
// Calls made before it loads are queued by the stub (stub.js) and replayed here, in order.
import { choose, gpc, permitted } from "./consent";
import { context, pageInfo, version } from "./context";
import { aid, hash, reset, sid, start, uid, user, uuid, wipe } from "./identity";
import { again, watch } from "./pages";
import { personalize } from "./slots";
import { adopt, clear, connect, flush, push } from "./transport";
import type { Fields, Msg, Props } from "./types";

// What stub.js leaves behind: the calls made before the snippet loaded.
type Stub = { q?: [string, unknown[]][] };

declare global {
  interface Window {
    tessera?: Stub | typeof api;
  }
}

// Whether tracking runs: consent (or no need for it) and no Global Privacy Control.
let on = false;

// Starts tracking: identity, what earlier pages left unsent, and this page's view if it was missed.
const go = () => {
  on = true;
  start();
  adopt();
  again();
};

const send = <T extends Msg["type"]>(type: T, fields: Fields<T>) => {
  if (on)
    push(
      // `type` and `fields` make an Extract<Msg, {type: T}>, which TypeScript cannot see through
      // the generic; the call sites are checked against the wire types by Fields<T>.
      Object.assign(
        {
          type,
          messageId: uuid(),
          anonymousId: aid,
          userId: uid || undefined,
          timestamp: new Date().toISOString(),
          context: context(sid(), hash),
        },
        fields,
      ) as Msg,
    );
};

// The snippet must never break the host page: every public method swallows its errors.
const safe =
  <A extends unknown[]>(f: (...a: A) => void) =>
  (...a: A) => {
    try {
      f(...a);
    } catch {}
  };

const api = {
  version,
  /** Records a page view; `properties` add to (or override) path, url, title, referrer, search. */
  page: safe((properties: Props & { name?: string } = {}) =>
    send("page", { name: properties.name, properties: Object.assign(pageInfo(), properties) }),
  ),
  /** Records an event. */
  track: safe((event: string, properties?: Props) => send("track", { event, properties: properties || {} })),
  /** identify(userId, traits?, {userHash}?) or identify(traits, {userHash}?). `userHash` is the site
   * server's HMAC of the userId (identity verification): it travels as context.userHash of every
   * message of this page while the user id stays the same, and with the personalize request. */
  identify: safe((userId?: string | Props | null, traits?: Props, options?: { userHash?: string }) => {
    if (userId && typeof userId === "object") {
      options = traits;
      traits = userId;
      userId = undefined;
    }
    if (!on) return;
    const { userHash } = options || {};
    user(userId != null ? `${userId}` : uid, userHash);
    send("identify", { traits });
  }),
  /** Links the current user id (or anonymous id) to `newId`, which becomes the user id. */
  alias: safe((newId: string) => {
    if (!on || newId == null) return;
    send("alias", { previousId: uid || aid, userId: newId });
    user(newId);
  }),
  /** Associates the visitor with a group (a company, an account). */
  group: safe((groupId: string, traits?: Props) => send("group", { groupId, traits })),
  /** Logout: a new anonymous id, no user id, a new session. */
  reset: safe(() => on && reset()),
  /** Records the visitor's choice; a no-op under Global Privacy Control. Withdrawing consent deletes
   * the identifiers and every unsent message. */
  consent: safe((c: { analytics?: boolean } = {}) => {
    if (gpc()) return;
    const yes = !!c.analytics;
    if (!yes) {
      on = false;
      wipe();
      clear();
    } else if (!on) go();
    choose(yes);
  }),
  /** Sends what is queued now. */
  flush: safe(() => flush()),
};

const stub = (window.tessera || {}) as Stub & { version?: string };

// A second copy of the tag must not wrap history again and double every page view.
if (!stub.version)
  try {
    const s = (document.currentScript || document.querySelector("script[data-key]")) as HTMLScriptElement;
    const d = s.dataset;
    const base = d.api || new URL(s.src).origin;
    const key = d.key || "";
    connect(base, key);
    if (permitted(d.consent === "required")) go();
    for (const [m, a] of stub.q || []) {
      const f = (api as unknown as Record<string, ((...a: unknown[]) => void) | undefined>)[m];
      if (f) f(...a);
    }
    window.tessera = api;
    if (d.auto !== "false") watch(api.page);
    const fill = () => {
      const query = new URLSearchParams({ writeKey: key, anonymousId: aid });
      if (uid) query.set("userId", uid);
      if (hash) query.set("userHash", hash);
      personalize(on ? `${base}/v1/personalize?${query}` : "");
    };
    // An async script may run before the page is parsed: wait for the slots to exist.
    document.readyState === "loading" ? addEventListener("DOMContentLoaded", fill) : fill();
  } catch {}
