/**
 * Small shared pieces: data loading, errors, tables of untrusted values, links that are only
 * links when they are safe, pagination. Everything untrusted is passed to JSX as a string.
 */
import type { Child } from "hono/jsx";
import { useCallback, useEffect, useState } from "hono/jsx/dom";
import { ApiError, type Role, type User } from "./api";
import { dateTime, ago as fmtAgo, prettyJson, safeHref, text } from "./format";
import { Link, navigate } from "./router";

let me: User | null = null;

export function setMe(user: User | null): void {
  me = user;
}

export function currentUser(): User | null {
  return me;
}

const rank: Record<Role, number> = { viewer: 0, marketer: 1, admin: 2 };

/** Whether the signed-in user has at least `role` (the UI hides what the server would refuse). */
export function can(role: Role): boolean {
  return me !== null && rank[me.role] >= rank[role];
}

export interface Async<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
  set: (data: T) => void;
}

/** Runs `load` when `deps` change; stale answers (from an earlier deps value) are dropped. */
export function useAsync<T>(load: () => Promise<T>, deps: unknown[]): Async<T> {
  const [state, setState] = useState<{ data?: T; error?: unknown; loading: boolean }>({ loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ data: s.data, loading: true }));
    load().then(
      (data) => live && setState({ data, loading: false }),
      (error) => live && setState({ error, loading: false }),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  const set = useCallback((data: T) => setState({ data, loading: false }), []);
  return { data: state.data, error: state.error, loading: state.loading, reload, set };
}

/** The message of an error, with the server's validation details when there are some. */
export function errorText(error: unknown): string {
  if (error instanceof ApiError) {
    const details = Array.isArray(error.details)
      ? (error.details as { path?: string; message?: string }[])
          .slice(0, 5)
          .map((d) => (d.path ? `${d.path}: ${d.message}` : text(d.message ?? d)))
          .join("; ")
      : "";
    return `${error.message}${details ? ` — ${details}` : ""}`;
  }
  return error instanceof Error ? error.message : text(error);
}

export function ErrorBox(props: { error: unknown }) {
  if (!props.error) return null;
  return (
    <p class="error" role="alert">
      {errorText(props.error)}
    </p>
  );
}

/** Loading and error states around `children`. */
export function Loaded<T>(props: { state: Async<T>; children: (data: T) => Child }) {
  const { data, error, loading } = props.state;
  if (error) return <ErrorBox error={error} />;
  if (data === undefined) return loading ? <p class="muted">Loading…</p> : null;
  return <>{props.children(data)}</>;
}

const isoTime = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;

/** A value from tracked data: a link only for http(s) URLs (and then with no referrer or opener). */
export function Value(props: { value: unknown; max?: number }) {
  const v = props.value;
  const href = typeof v === "string" && /^https?:/i.test(v.trim()) ? safeHref(v.trim()) : null;
  // ISO timestamps (computed first/last seen, …) read better as local times; the raw value stays in the tooltip.
  const s = typeof v === "string" && isoTime.test(v) ? dateTime(v) : text(v, props.max ?? 200);
  const full = text(v, 2000);
  if (href) {
    return (
      <a href={href} target="_blank" rel="noopener noreferrer nofollow" title={full}>
        {s}
      </a>
    );
  }
  return <span title={full.length > s.length ? full : undefined}>{s}</span>;
}

/** A table of an object's entries; `sources` adds when (and from where) each value was set. */
export function KV(props: {
  data: Record<string, unknown> | null | undefined;
  empty?: string;
  sources?: Record<string, { at: string; source: string }>;
}) {
  const entries = Object.entries(props.data ?? {});
  if (entries.length === 0) return <p class="muted">{props.empty ?? "None"}</p>;
  return (
    <table class="kv">
      <tbody>
        {entries.map(([k, v]) => {
          const src = props.sources?.[k];
          return (
            <tr>
              <th>{text(k, 100)}</th>
              <td>
                <Value value={v} />
              </td>
              {props.sources ? (
                <td class="src" title={src ? `${text(src.source, 100)} · ${dateTime(src.at)}` : undefined}>
                  {src ? fmtAgo(src.at) : ""}
                </td>
              ) : null}
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

/** JSON as text in a `<pre>`. */
export function Json(props: { value: unknown }) {
  return <pre class="json">{prettyJson(props.value)}</pre>;
}

export function Time(props: { value: unknown; relative?: boolean }) {
  const full = dateTime(props.value);
  return <time title={full}>{props.relative ? fmtAgo(props.value) || full : full}</time>;
}

export function Pager(props: { hasPrev: boolean; onPrev: () => void; next?: string | null; onNext: () => void }) {
  if (!props.hasPrev && !props.next) return null;
  return (
    <nav class="pager" aria-label="Pagination">
      <button type="button" class="secondary" disabled={!props.hasPrev} onClick={props.onPrev}>
        ← Newer
      </button>
      <button type="button" class="secondary" disabled={!props.next} onClick={props.onNext}>
        Older →
      </button>
    </nav>
  );
}

/** A cursor stack, so that a cursor-paginated list can go back as well as forward. */
export function useCursor(reset: unknown[]) {
  const [stack, setStack] = useState<(string | null)[]>([null]);
  useEffect(() => setStack([null]), reset);
  return {
    cursor: stack[stack.length - 1],
    hasPrev: stack.length > 1,
    next: (c: string) => setStack((s) => [...s, c]),
    prev: () => setStack((s) => (s.length > 1 ? s.slice(0, -1) : s)),
  };
}

export type Cursor = ReturnType<typeof useCursor>;

/** The pager of a list read through `page`: `next` is the list's `nextCursor` (absent while loading). */
export function CursorPager(props: { page: Cursor; next: string | null | undefined }) {
  const { page, next } = props;
  return <Pager hasPrev={page.hasPrev} onPrev={page.prev} next={next} onNext={() => next && page.next(next)} />;
}

/** A page's title with what sits to its right (actions, badges). */
export function PageHead(props: { title: Child; action?: Child }) {
  return (
    <div class="page-head">
      <h1>{props.title}</h1>
      {props.action}
    </div>
  );
}

/** A button-styled link shown only to users with at least `minRole` (the server refuses the others anyway). */
export function ButtonLink(props: { minRole: Role; href: string; label: string }) {
  return can(props.minRole) ? (
    <Link class="button" href={props.href}>
      {props.label}
    </Link>
  ) : null;
}

export function CopyButton(props: { value: string; label?: string }) {
  const [done, setDone] = useState(false);
  return (
    <button
      type="button"
      class="secondary small"
      onClick={() => {
        navigator.clipboard?.writeText(props.value).then(
          () => setDone(true),
          () => setDone(false),
        );
        setTimeout(() => setDone(false), 1500);
      }}
    >
      {done ? "Copied" : (props.label ?? "Copy")}
    </button>
  );
}

/** Shows a short-lived message at the top of the page. */
const toastListeners = new Set<(m: string) => void>();
export function notify(message: string): void {
  for (const l of toastListeners) l(message);
}

export function Toasts() {
  const [message, setMessage] = useState("");
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const show = (m: string) => {
      setMessage(m);
      clearTimeout(timer);
      timer = setTimeout(() => setMessage(""), 3000);
    };
    toastListeners.add(show);
    return () => {
      toastListeners.delete(show);
    };
  }, []);
  return message ? (
    <div class="toast" role="status">
      {message}
    </div>
  ) : null;
}

/** Runs an action, reporting its error inline; `busy` disables the trigger meanwhile. */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const run = async (action: () => Promise<unknown>, done?: string) => {
    setBusy(true);
    setError(null);
    try {
      await action();
      if (done) notify(done);
      return true;
    } catch (e) {
      setError(e);
      return false;
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, run, setError };
}

/**
 * A destructive action: asks `question`, runs `remove` through `action` (errors shown inline,
 * disabled while busy), then leaves for `then` and says `done`. Callers decide who sees it.
 */
export function DeleteButton(props: {
  label?: string;
  question: string;
  action: ReturnType<typeof useAction>;
  remove: () => Promise<unknown>;
  then: string;
  done: string;
}) {
  return (
    <button
      type="button"
      class="danger"
      disabled={props.action.busy}
      onClick={() =>
        confirm(props.question) &&
        props.action.run(async () => {
          await props.remove();
          navigate(props.then);
        }, props.done)
      }
    >
      {props.label ?? "Delete"}
    </button>
  );
}

/** Reads `name` from a submitted form as trimmed text. */
export function field(form: HTMLFormElement, name: string): string {
  const el = form.elements.namedItem(name);
  return el instanceof HTMLInputElement || el instanceof HTMLTextAreaElement || el instanceof HTMLSelectElement
    ? el.value.trim()
    : "";
}

export function Section(props: { title: string; actions?: Child; children?: Child }) {
  return (
    <section class="card">
      <header class="card-head">
        <h2>{props.title}</h2>
        {props.actions ? <div class="actions">{props.actions}</div> : null}
      </header>
      {props.children}
    </section>
  );
}
