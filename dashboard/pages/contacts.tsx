/** The contacts list (search, filters, sort, pagination, export) and the new-contact form. */
import { api, type User } from "../api";
import { displayName, text } from "../format";
import { Link, type Location, navigate, setQuery } from "../router";
import { CursorPager, can, ErrorBox, field, Loaded, PageHead, Time, useAction, useAsync, useCursor } from "../ui";

/** Lifecycle stages of issue 8, in order; the server also accepts custom ones. */
export const stages = ["subscriber", "lead", "mql", "sql", "opportunity", "customer", "evangelist", "other"];

export const stageLabel = (s: string | null | undefined) =>
  s ? ({ mql: "MQL", sql: "SQL" }[s] ?? s.charAt(0).toUpperCase() + s.slice(1)) : "";

/** Users for owner pickers; a role that may not list users simply gets no picker. */
export function useUsers() {
  return useAsync<User[]>(() => api.users().catch(() => []), []);
}

const filterNames = ["q", "segment", "stage", "owner", "tag", "sort", "order"] as const;

export function ContactsPage(props: { loc: Location }) {
  const q = props.loc.query;
  const filters = Object.fromEntries(filterNames.map((n) => [n, q.get(n) ?? ""])) as Record<
    (typeof filterNames)[number],
    string
  >;
  const key = filterNames.map((n) => filters[n]).join("\u0000");
  const page = useCursor([key]);
  const list = useAsync(() => api.contacts({ ...filters, cursor: page.cursor, limit: 50 }), [key, page.cursor]);
  const segments = useAsync(() => api.segments().catch(() => []), []);
  const users = useUsers();
  const ownerName = (id: string | null | undefined) => {
    const u = users.data?.find((x) => x.id === id);
    return u ? u.name || u.email : (id ?? "");
  };
  const select = (name: string, value: string) => setQuery({ [name]: value }, true);
  return (
    <>
      <PageHead
        title="Contacts"
        action={
          <div class="actions">
            {can("marketer") ? (
              <>
                <a class="button secondary" href={api.contactsExportUrl(filters)} download>
                  Export CSV
                </a>
                <Link class="button secondary" href="/dashboard/contacts/import">
                  Import CSV
                </Link>
                <Link class="button" href="/dashboard/contacts/new">
                  New contact
                </Link>
              </>
            ) : null}
          </div>
        }
      />
      <form
        class="filters"
        aria-label="Search and filter contacts"
        onSubmit={(e: Event) => {
          e.preventDefault();
          select("q", field(e.target as HTMLFormElement, "q"));
        }}
      >
        <input
          name="q"
          type="search"
          placeholder="Search name, email or any identifier"
          value={filters.q}
          maxlength={200}
          aria-label="Search"
        />
        <select
          aria-label="Segment"
          value={filters.segment}
          onChange={(e: Event) => select("segment", (e.target as HTMLSelectElement).value)}
        >
          <option value="">Any segment</option>
          {(segments.data ?? []).map((s) => (
            <option value={s.key}>{s.name || s.key}</option>
          ))}
        </select>
        <select
          aria-label="Lifecycle stage"
          value={filters.stage}
          onChange={(e: Event) => select("stage", (e.target as HTMLSelectElement).value)}
        >
          <option value="">Any stage</option>
          {stages.map((s) => (
            <option value={s}>{stageLabel(s)}</option>
          ))}
        </select>
        {users.data?.length ? (
          <select
            aria-label="Owner"
            value={filters.owner}
            onChange={(e: Event) => select("owner", (e.target as HTMLSelectElement).value)}
          >
            <option value="">Any owner</option>
            {users.data.map((u) => (
              <option value={u.id}>{u.name || u.email}</option>
            ))}
          </select>
        ) : null}
        <input
          aria-label="Tag"
          placeholder="Tag"
          value={filters.tag}
          maxlength={50}
          onChange={(e: Event) => select("tag", (e.target as HTMLInputElement).value.trim())}
        />
        <select
          aria-label="Sort"
          value={filters.sort || "last_seen"}
          onChange={(e: Event) => select("sort", (e.target as HTMLSelectElement).value)}
        >
          <option value="last_seen">Last seen</option>
          <option value="created">Created</option>
          <option value="name">Name</option>
        </select>
        <select
          aria-label="Order"
          value={filters.order || "desc"}
          onChange={(e: Event) => select("order", (e.target as HTMLSelectElement).value)}
        >
          <option value="desc">Descending</option>
          <option value="asc">Ascending</option>
        </select>
        <button type="submit">Search</button>
      </form>
      <Loaded state={list}>
        {(data) =>
          data.items.length === 0 ? (
            <p class="muted">No contacts match.</p>
          ) : (
            <div class="table-wrap">
              <table class="list">
                <thead>
                  <tr>
                    <th>Name</th>
                    <th>Email</th>
                    <th>Stage</th>
                    <th>Owner</th>
                    <th>Tags</th>
                    <th>Last seen</th>
                  </tr>
                </thead>
                <tbody>
                  {data.items.map((c) => (
                    <tr>
                      <td>
                        <Link href={`/dashboard/contacts/${encodeURIComponent(c.id)}`}>{displayName(c)}</Link>
                      </td>
                      <td>{text(c.email, 80)}</td>
                      <td>{stageLabel(c.lifecycleStage)}</td>
                      <td>{ownerName(c.ownerId)}</td>
                      <td>
                        {(c.tags ?? []).map((t) => (
                          <span class="tag">{text(t, 50)}</span>
                        ))}
                      </td>
                      <td>
                        <Time value={c.lastSeenAt} relative />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )
        }
      </Loaded>
      <CursorPager page={page} next={list.data?.nextCursor} />
    </>
  );
}

/** Parses the optional JSON traits textarea; empty means none. */
export function parseTraits(value: string): Record<string, unknown> {
  if (!value.trim()) return {};
  const parsed: unknown = JSON.parse(value);
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("Traits must be a JSON object");
  return parsed as Record<string, unknown>;
}

export function ContactForm() {
  const action = useAction();
  return (
    <>
      <h1>New contact</h1>
      <form
        class="card form"
        onSubmit={(e: Event) => {
          e.preventDefault();
          const form = e.target as HTMLFormElement;
          action.run(async () => {
            let traits: Record<string, unknown>;
            try {
              traits = parseTraits(field(form, "traits"));
            } catch (err) {
              throw new Error(`Other traits: ${err instanceof Error ? err.message : "invalid JSON"}`);
            }
            const name = field(form, "name");
            const phone = field(form, "phone");
            await api.createContact({
              email: field(form, "email"),
              ...(name ? { name } : {}),
              ...(phone ? { phone } : {}),
              ...(Object.keys(traits).length ? { traits } : {}),
            });
            navigate(`/dashboard/contacts?q=${encodeURIComponent(field(form, "email"))}`);
          }, "Contact queued: it appears in the list within seconds");
        }}
      >
        <ErrorBox error={action.error} />
        <label for="c-email">Email</label>
        <input id="c-email" name="email" type="email" required maxlength={254} />
        <label for="c-name">Name</label>
        <input id="c-name" name="name" maxlength={200} />
        <label for="c-phone">Phone</label>
        <input id="c-phone" name="phone" type="tel" maxlength={40} />
        <label for="c-traits">Other traits (JSON object, optional)</label>
        <textarea id="c-traits" name="traits" rows={4} maxlength={20000} placeholder='{"plan": "pro"}' />
        <div class="actions">
          <button type="submit" disabled={action.busy}>
            Create contact
          </button>
          <Link class="button secondary" href="/dashboard/contacts">
            Cancel
          </Link>
        </div>
      </form>
    </>
  );
}
