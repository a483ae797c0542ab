/**
 * The dashboard client: signs in (or finds the session), then renders the page for the current
 * /dashboard URL. The server-rendered shell already holds a sign-in form that works without
 * JavaScript; this takes over the same element once loaded.
 */
import type { Child } from "hono/jsx";
import { render, useEffect, useState } from "hono/jsx/dom";
import { ApiError, api, type Role, type Session, setUnauthorizedHandler } from "./api";
import { ContactPage } from "./pages/contact";
import { ContactForm, ContactsPage } from "./pages/contacts";
import { DebuggerPage } from "./pages/debugger";
import { DestinationPage, DestinationsPage } from "./pages/destinations";
import { ImportPage } from "./pages/import";
import { OverviewPage } from "./pages/overview";
import { SegmentPage, SegmentsPage } from "./pages/segments";
import { SitesPage } from "./pages/sites";
import { SlotPage, SlotsPage } from "./pages/slots";
import { UsersPage } from "./pages/users";
import { Link, type Location, match, navigate, useLocation } from "./router";
import { can, ErrorBox, errorText, setMe, Toasts, useAction } from "./ui";

type Params = Record<string, string>;

interface Route {
  path: string;
  title: string;
  role?: Role;
  page: (params: Params, loc: Location) => Child;
}

// Order matters: fixed paths before `:param` ones at the same depth.
const routes: Route[] = [
  { path: "/dashboard", title: "Overview", page: () => <OverviewPage /> },
  { path: "/dashboard/contacts", title: "Contacts", page: (_, loc) => <ContactsPage loc={loc} /> },
  { path: "/dashboard/contacts/new", title: "New contact", role: "marketer", page: () => <ContactForm /> },
  { path: "/dashboard/contacts/import", title: "Import contacts", role: "marketer", page: () => <ImportPage /> },
  { path: "/dashboard/contacts/:id", title: "Contact", page: (p) => <ContactPage id={p.id} /> },
  { path: "/dashboard/segments", title: "Segments", page: () => <SegmentsPage /> },
  { path: "/dashboard/segments/new", title: "New segment", role: "marketer", page: () => <SegmentPage /> },
  { path: "/dashboard/segments/:key", title: "Segment", page: (p) => <SegmentPage segmentKey={p.key} /> },
  { path: "/dashboard/slots", title: "Personalization", page: () => <SlotsPage /> },
  { path: "/dashboard/slots/new", title: "New slot", role: "marketer", page: () => <SlotPage /> },
  { path: "/dashboard/slots/:key", title: "Slot", page: (p) => <SlotPage slotKey={p.key} /> },
  { path: "/dashboard/destinations", title: "Destinations", role: "admin", page: () => <DestinationsPage /> },
  {
    path: "/dashboard/destinations/:id",
    title: "Destination",
    role: "admin",
    page: (p) => <DestinationPage id={p.id} />,
  },
  { path: "/dashboard/debugger", title: "Debugger", page: (_, loc) => <DebuggerPage loc={loc} /> },
  { path: "/dashboard/sites", title: "Sites", page: () => <SitesPage /> },
  { path: "/dashboard/users", title: "Users", role: "admin", page: () => <UsersPage /> },
];

const nav: { href: string; label: string; role?: Role }[] = [
  { href: "/dashboard", label: "Overview" },
  { href: "/dashboard/contacts", label: "Contacts" },
  { href: "/dashboard/segments", label: "Segments" },
  { href: "/dashboard/slots", label: "Personalization" },
  { href: "/dashboard/destinations", label: "Destinations", role: "admin" },
  { href: "/dashboard/debugger", label: "Debugger" },
  { href: "/dashboard/sites", label: "Sites" },
  { href: "/dashboard/users", label: "Users", role: "admin" },
];

function Shell(props: { session: Session; onSignOut: () => void }) {
  const loc = useLocation();
  // After a sign-in through the no-JavaScript form, the login URL has done its job.
  const path = loc.path === "/dashboard/login" ? "/dashboard" : loc.path;
  useEffect(() => {
    if (loc.path === "/dashboard/login") navigate("/dashboard", true);
  }, [loc.path]);
  let content: Child = (
    <div class="card">
      <h1>Not found</h1>
      <p>
        There is no page at this address. <Link href="/dashboard">Go to the overview</Link>.
      </p>
    </div>
  );
  let title = "Not found";
  for (const r of routes) {
    const params = match(r.path, path);
    if (!params) continue;
    title = r.title;
    content =
      r.role && !can(r.role) ? (
        <div class="card">
          <h1>{r.title}</h1>
          <p>This page needs the {r.role} role.</p>
        </div>
      ) : (
        r.page(params, loc)
      );
    break;
  }
  useEffect(() => {
    document.title = `${title} · Tessera`;
  }, [title]);
  const user = props.session.user;
  return (
    <div class="layout">
      <header class="topbar">
        <Link href="/dashboard" class="brand">
          Tessera
        </Link>
        <nav class="nav" aria-label="Main">
          {nav
            .filter((n) => !n.role || can(n.role))
            .map((n) => (
              <Link
                href={n.href}
                class={
                  (n.href === "/dashboard" ? path === n.href : path === n.href || path.startsWith(`${n.href}/`))
                    ? "active"
                    : undefined
                }
              >
                {n.label}
              </Link>
            ))}
        </nav>
        <div class="who">
          <span title={user.email}>
            {user.name || user.email} <span class="badge">{user.role}</span>
          </span>
          <button type="button" class="secondary small" onClick={props.onSignOut}>
            Sign out
          </button>
        </div>
      </header>
      <Toasts />
      <main class="content">{content}</main>
    </div>
  );
}

/** The message for the `?error=` reason the no-JavaScript sign-in lands back with. */
export function signInError(reason: string): string {
  if (reason === "locked") return "Too many failed sign-ins; try again later.";
  if (reason === "origin") return "Sign-in from another site was refused.";
  return "Wrong email or password.";
}

function SignIn(props: { onSignedIn: (s: Session) => void; error?: unknown }) {
  const action = useAction();
  const failed = new URLSearchParams(location.search).get("error");
  return (
    <div class="signin card">
      <h1>Sign in to Tessera</h1>
      {failed && !action.error ? (
        <p class="error" role="alert">
          {signInError(failed)}
        </p>
      ) : null}
      <ErrorBox error={action.error ?? props.error} />
      <form
        method="post"
        action="/api/auth/login"
        onSubmit={(e: Event) => {
          e.preventDefault();
          const form = e.target as HTMLFormElement;
          const data = new FormData(form);
          action.run(async () => {
            try {
              props.onSignedIn(await api.login(String(data.get("email")), String(data.get("password"))));
            } catch (err) {
              if (err instanceof ApiError && err.status === 401) throw new Error("Wrong email or password.");
              throw err;
            }
          });
        }}
      >
        <label for="email">Email</label>
        <input id="email" name="email" type="email" autocomplete="username" required maxlength={254} />
        <label for="password">Password</label>
        <input id="password" name="password" type="password" autocomplete="current-password" required maxlength={200} />
        <button type="submit" disabled={action.busy}>
          {action.busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </div>
  );
}

function App() {
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const [bootError, setBootError] = useState<unknown>(null);
  useEffect(() => {
    setUnauthorizedHandler(() => {
      setMe(null);
      setSession(null);
    });
    api.me().then(
      (s) => {
        setMe(s.user);
        setSession(s.user && s.csrfToken ? { user: s.user, csrfToken: s.csrfToken } : null);
      },
      (e) => {
        if (!(e instanceof ApiError && e.status === 401))
          setBootError(new Error(`Could not check the session: ${errorText(e)}`));
        setSession(null);
      },
    );
  }, []);
  if (session === undefined) return <p class="muted boot">Loading…</p>;
  if (session === null) {
    return (
      <SignIn
        error={bootError}
        onSignedIn={(s) => {
          setMe(s.user);
          setSession(s);
        }}
      />
    );
  }
  return (
    <Shell
      session={session}
      onSignOut={() => {
        api.logout().finally(() => {
          setMe(null);
          setSession(null);
          navigate("/dashboard");
        });
      }}
    />
  );
}

const root = document.getElementById("app");
if (root) {
  root.replaceChildren();
  root.classList.add("app");
  render(<App />, root);
}
