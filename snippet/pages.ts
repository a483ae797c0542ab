// Page views: the first one and every SPA navigation (History API, back/forward, hash routing).
import { moved } from "./rules";

let last = "";
let view: (() => void) | undefined;
let pending = 0;

// Schedules one view when the URL has moved to a new page. The view runs a tick later, once the
// router has set document.title; navigations within that tick (push then replace) yield one view.
const nav = (hash?: boolean) => {
  try {
    const u = location.href;
    if (view && moved(last, u, hash)) {
      last = u;
      if (!pending)
        pending = setTimeout(() => {
          pending = 0;
          (view as () => void)();
        });
    }
  } catch {}
};

/** Calls `v` for the current page and for each later one. */
export const watch = (v: () => void) => {
  view = v;
  for (const k of ["pushState", "replaceState"] as const) {
    const o = history[k];
    history[k] = function (this: History, ...a: Parameters<History["pushState"]>) {
      o.apply(this, a);
      nav();
    };
  }
  addEventListener("popstate", () => nav());
  addEventListener("hashchange", () => nav(true));
  nav();
};

/** Views the current page again (consent given after it loaded); a no-op unless watching. */
export const again = () => {
  last = "";
  nav();
};
