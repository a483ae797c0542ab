// Tessera's browser snippet. Install:
//   <script async src="https://HOST/s.js" data-key="WRITE_KEY"></script>
// Optional: data-consent="required" (opt-in). The API is the script's own origin. Calls made
// before it loads are queued by the stub (stub.js) and replayed here, in order. Budget: 2,048 B
// gzip (test/node/snippet-size.test.ts), which is why personalization is a second script.
import { message, pageInfo } from "./context";
import { aid, hash, reset, start, uid, user, wipe } from "./identity";
import { again, watch } from "./pages";
import { allowed } from "./rules";
import { ls, set } from "./storage";
import { adopt, clear, connect, push } from "./transport";
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

const send = <T extends Msg["type"]>(type: T, fields: Fields<T>) => on && push(message(type, fields));

// Global Privacy Control: a binding opt-out; while it is on the snippet stores and sends nothing.
const gpc = () => (navigator as Navigator & { globalPrivacyControl?: boolean }).globalPrivacyControl;

const api = {
  /** Records a page view; `properties` add to (or override) path, url, title, referrer, search. */
  page: (properties: Props & { name?: string } = {}) =>
    send("page", { name: properties.name, properties: Object.assign(pageInfo(), properties) }),
  /** Records an event. */
  track: (event: string, properties?: Props) => send("track", { event, properties: properties || {} }),
  /** identify(userId?, traits?, {userHash}?); without a userId, the traits go to the current
   * visitor. `userHash` is the site server's HMAC of the userId (identity verification): it
   * travels as context.userHash of every message of this page while the user id stays the same,
   * and with the personalize request. */
  identify: (userId?: string | null, traits?: Props, options?: { userHash?: string }) => {
    if (on) {
      // biome-ignore lint/complexity/useOptionalChain: `?.` is lowered to a longer form for es2017
      user(userId == null ? uid : `${userId}`, (options || {}).userHash);
      send("identify", { traits });
    }
  },
  /** Links the current user id (or anonymous id) to `newId`, which becomes the user id. */
  alias: (newId: string) => {
    if (on && newId != null) {
      send("alias", { previousId: uid || aid, userId: newId });
      user(newId);
    }
  },
  /** Associates the visitor with a group (a company, an account). */
  group: (groupId: string, traits?: Props) => send("group", { groupId, traits }),
  /** Logout: a new anonymous id, no user id, a new session. */
  reset: () => on && reset(),
  /** Records the visitor's choice; a no-op under Global Privacy Control. Withdrawing consent deletes
   * the identifiers and every unsent message. */
  consent: (c: { analytics?: boolean } = {}) => {
    if (!gpc()) {
      const yes = !!c.analytics;
      if (!yes) {
        on = false;
        wipe();
        clear();
      } else if (!on) go();
      // Written only once a choice is made: an opt-in site must store nothing before that.
      set("tsr_c", yes ? "1" : "0");
    }
  },
};

// The snippet must never break the host page: every public method swallows its errors.
for (const k in api) {
  const f = api[k as keyof typeof api] as (...a: unknown[]) => void;
  (api as Record<string, unknown>)[k] = (...a: unknown[]) => {
    try {
      f(...a);
    } catch {}
  };
}

const stub = (window.tessera || { q: [] }) as Stub;

// A second copy of the tag finds the API (no `q`) and stops: a second start would double every
// page view.
if (stub.q)
  try {
    const s = document.currentScript as HTMLScriptElement;
    const d = s.dataset;
    const base = new URL(s.src).origin;
    const key = d.key as string;
    connect(base, key);
    if (allowed(gpc(), ls.tsr_c, d.consent === "required")) go();
    for (const [m, a] of stub.q) {
      const f = (api as Record<string, ((...a: unknown[]) => void) | undefined>)[m];
      if (f) f(...a);
    }
    window.tessera = api;
    watch(api.page);
    // Personalization lives in a second script, loaded only by pages that have slots (or the
    // anti-flicker class to lift), so that /s.js stays within its byte budget. It gets the visitor
    // on its script element (nothing when tracking is off: it then only shows the defaults).
    const slots = () =>
      document.querySelector("[data-tessera-slot],.tessera-loading") &&
      document.head.append(
        Object.assign(document.createElement("script"), {
          src: `${base}/s/slots.js`,
          who: on && [key, aid, uid, hash],
        }),
      );
    // An async script may run before the page is parsed: wait for the slots to exist.
    document.readyState === "loading" ? addEventListener("DOMContentLoaded", slots) : slots();
  } catch {}
