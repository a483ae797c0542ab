/**
 * History API routing: every page has a real URL under /dashboard (deep links work, the server
 * answers every /dashboard/* path with the shell), and the back button walks the history.
 */
import type { Child } from "hono/jsx";
import { useEffect, useState } from "hono/jsx/dom";

export interface Location {
  path: string;
  query: URLSearchParams;
}

const listeners = new Set<() => void>();

function current(): Location {
  return { path: location.pathname.replace(/\/+$/, "") || "/dashboard", query: new URLSearchParams(location.search) };
}

/** Goes to `to` (a /dashboard URL); `replace` rewrites the current entry instead (filters). */
export function navigate(to: string, replace = false): void {
  if (to === location.pathname + location.search) return;
  history[replace ? "replaceState" : "pushState"](null, "", to);
  if (!replace) window.scrollTo(0, 0);
  for (const l of listeners) l();
}

window.addEventListener("popstate", () => {
  for (const l of listeners) l();
});

/** The current location; re-renders the caller on navigation. */
export function useLocation(): Location {
  const [loc, setLoc] = useState(current);
  useEffect(() => {
    const update = () => setLoc(current());
    listeners.add(update);
    return () => {
      listeners.delete(update);
    };
  }, []);
  return loc;
}

/** Matches `/dashboard/segments/:key` against a path; returns the decoded params or null. */
export function match(pattern: string, path: string): Record<string, string> | null {
  const p = pattern.split("/");
  const s = path.split("/");
  if (p.length !== s.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < p.length; i++) {
    if (p[i].startsWith(":")) {
      try {
        params[p[i].slice(1)] = decodeURIComponent(s[i]);
      } catch {
        return null;
      }
    } else if (p[i] !== s[i]) return null;
  }
  return params;
}

/** An in-app link: a real `href` (open in new tab works), client-side navigation on plain click. */
export function Link(props: { href: string; class?: string; title?: string; children?: Child }) {
  return (
    <a
      href={props.href}
      class={props.class}
      title={props.title}
      onClick={(e: MouseEvent) => {
        if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
        e.preventDefault();
        navigate(props.href);
      }}
    >
      {props.children}
    </a>
  );
}

/** Replaces some query parameters of the current page (filters, cursors) and navigates. */
export function setQuery(changes: Record<string, string | null | undefined>, replace = false): void {
  const q = new URLSearchParams(location.search);
  for (const [k, v] of Object.entries(changes)) {
    if (v === null || v === undefined || v === "") q.delete(k);
    else q.set(k, v);
  }
  const qs = q.toString();
  navigate(location.pathname + (qs ? `?${qs}` : ""), replace);
}
