// Page views: the first one and every SPA navigation (History API, back/forward, hash routes).
//
// The URL is polled rather than history.pushState wrapped: nothing of the host page is patched
// (a router that kept its own reference to pushState, or another tracker wrapping it too, cannot
// hide or double a navigation), a router's push-then-replace of one URL is one view, and the view
// comes after the router has set the new document.title. It also costs fewer bytes.
import { pageKey } from "./rules";

let last: string | undefined;
let view: (() => void) | undefined;

const nav = () => {
  const k = pageKey(location.href);
  if (view && k !== last) {
    last = k;
    view();
  }
};

/** Calls `v` for the current page and for each later one. */
export const watch = (v: () => void) => {
  view = v;
  setInterval(nav, 300);
  nav();
};

/** Views the current page again (consent given after it loaded); a no-op unless watching. */
export const again = () => {
  last = "";
  nav();
};
