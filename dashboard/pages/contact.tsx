/**
 * The contact page, the 360° view: traits, identities, computed traits, segments, company, the
 * event timeline, and the CRM fields (stage, owner, tags, notes, tasks); edit, merge, erase, export.
 */
import { useEffect, useState } from "hono/jsx/dom";
import { api, type Contact, type Profile, type TrackedEvent } from "../api";
import { dateTime, displayName, fromLocalInput, prettyJson, splitList, text } from "../format";
import { Link, navigate } from "../router";
import {
  type Async,
  CursorPager,
  can,
  currentUser,
  DeleteButton,
  ErrorBox,
  field,
  Json,
  KV,
  Loaded,
  Section,
  Time,
  useAction,
  useAsync,
  useCursor,
  Value,
} from "../ui";
import { parseTraits, stageLabel, stages, useUsers } from "./contacts";

function CrmCard(props: { id: string }) {
  const contact = useAsync(() => api.contact(props.id), [props.id]);
  return (
    <Section title="CRM">
      <Loaded state={contact}>{(c) => <CrmFields crm={c} onSaved={contact.set} />}</Loaded>
    </Section>
  );
}

function CrmFields(props: { crm: Contact; onSaved: (c: Contact) => void }) {
  const crm = props.crm;
  const users = useUsers();
  const action = useAction();
  const editable = can("marketer");
  const update = (input: Parameters<typeof api.updateContact>[1], done: string) =>
    action.run(async () => props.onSaved(await api.updateContact(crm.id, input)), done);
  const custom = crm.lifecycleStage && !stages.includes(crm.lifecycleStage) ? [crm.lifecycleStage] : [];
  return (
    <>
      <ErrorBox error={action.error} />
      <label for="stage">Lifecycle stage</label>
      <select
        id="stage"
        disabled={!editable || action.busy}
        value={crm.lifecycleStage ?? ""}
        onChange={(e: Event) =>
          update({ lifecycleStage: (e.target as HTMLSelectElement).value || null }, "Stage updated")
        }
      >
        <option value="">None</option>
        {[...stages, ...custom].map((s) => (
          <option value={s}>{stageLabel(s)}</option>
        ))}
      </select>
      <label for="owner">Owner</label>
      {users.data?.length ? (
        <select
          id="owner"
          disabled={!editable || action.busy}
          value={crm.ownerId ?? ""}
          onChange={(e: Event) => update({ ownerId: (e.target as HTMLSelectElement).value || null }, "Owner updated")}
        >
          <option value="">Nobody</option>
          {users.data.map((u) => (
            <option value={u.id}>{u.name || u.email}</option>
          ))}
        </select>
      ) : (
        <p id="owner">{crm.ownerId ? text(crm.ownerId) : "Nobody"}</p>
      )}
      <label for="tags">Tags</label>
      {editable ? (
        <form
          class="inline"
          onSubmit={(e: Event) => {
            e.preventDefault();
            update({ tags: splitList(field(e.target as HTMLFormElement, "tags")) }, "Tags saved");
          }}
        >
          <input id="tags" name="tags" value={crm.tags.join(", ")} maxlength={2600} placeholder="vip, newsletter" />
          <button type="submit" class="secondary" disabled={action.busy}>
            Save tags
          </button>
        </form>
      ) : (
        <p id="tags">
          {crm.tags.map((t) => (
            <span class="tag">{text(t, 50)}</span>
          ))}
        </p>
      )}
    </>
  );
}

function Notes(props: { id: string }) {
  const notes = useAsync(() => api.notes(props.id), [props.id]);
  const action = useAction();
  const me = currentUser();
  return (
    <Section title="Notes">
      <ErrorBox error={action.error} />
      {can("marketer") ? (
        <form
          class="note-form"
          onSubmit={(e: Event) => {
            e.preventDefault();
            const form = e.target as HTMLFormElement;
            const body = field(form, "body");
            if (!body) return;
            action.run(async () => {
              await api.addNote(props.id, body);
              form.reset();
              notes.reload();
            }, "Note added");
          }}
        >
          <textarea name="body" rows={3} maxlength={10000} placeholder="Add a note…" aria-label="New note" required />
          <button type="submit" disabled={action.busy}>
            Add note
          </button>
        </form>
      ) : null}
      <Loaded state={notes}>
        {(items) =>
          items.length === 0 ? (
            <p class="muted">No notes yet.</p>
          ) : (
            <ul class="notes">
              {items.map((n) => (
                <li>
                  <p class="note-body">{text(n.body, 10000)}</p>
                  <p class="meta">
                    {text(n.author?.name || n.author?.email || n.authorId || "Unknown author", 100)} ·{" "}
                    <Time value={n.createdAt} />
                    {me && (me.role === "admin" || me.id === (n.author?.id ?? n.authorId)) ? (
                      <button
                        type="button"
                        class="link"
                        onClick={() =>
                          confirm("Delete this note?") &&
                          action.run(async () => {
                            await api.deleteNote(n.id);
                            notes.reload();
                          })
                        }
                      >
                        Delete
                      </button>
                    ) : null}
                  </p>
                </li>
              ))}
            </ul>
          )
        }
      </Loaded>
    </Section>
  );
}

function Tasks(props: { id: string }) {
  const tasks = useAsync(() => api.tasks(props.id), [props.id]);
  const action = useAction();
  const editable = can("marketer");
  return (
    <Section title="Tasks">
      <ErrorBox error={action.error} />
      {editable ? (
        <form
          class="inline"
          onSubmit={(e: Event) => {
            e.preventDefault();
            const form = e.target as HTMLFormElement;
            const title = field(form, "title");
            const due = fromLocalInput(field(form, "due"));
            if (!title) return;
            action.run(async () => {
              await api.addTask(props.id, due ? { title, dueAt: due } : { title });
              form.reset();
              tasks.reload();
            }, "Task added");
          }}
        >
          <input name="title" placeholder="New task" aria-label="Task title" maxlength={500} required />
          <input name="due" type="datetime-local" aria-label="Due" />
          <button type="submit" disabled={action.busy}>
            Add task
          </button>
        </form>
      ) : null}
      <Loaded state={tasks}>
        {(items) =>
          items.length === 0 ? (
            <p class="muted">No tasks.</p>
          ) : (
            <ul class="tasks">
              {items.map((t) => {
                const overdue = !t.done && t.dueAt && new Date(t.dueAt).getTime() < Date.now();
                return (
                  <li class={t.done ? "done" : undefined}>
                    <label>
                      <input
                        type="checkbox"
                        checked={t.done}
                        disabled={!editable}
                        onChange={(e: Event) =>
                          action.run(async () => {
                            await api.updateTask(t.id, { done: (e.target as HTMLInputElement).checked });
                            tasks.reload();
                          })
                        }
                      />{" "}
                      {text(t.title, 500)}
                    </label>
                    {t.dueAt ? <span class={overdue ? "due overdue" : "due"}>due {dateTime(t.dueAt)}</span> : null}
                    {editable ? (
                      <button
                        type="button"
                        class="link"
                        onClick={() =>
                          action.run(async () => {
                            await api.deleteTask(t.id);
                            tasks.reload();
                          })
                        }
                      >
                        Delete
                      </button>
                    ) : null}
                  </li>
                );
              })}
            </ul>
          )
        }
      </Loaded>
    </Section>
  );
}

/** What a timeline row says in one line: the event name, or the page's path or URL. */
export function eventLabel(e: TrackedEvent): string {
  if (e.event) return text(e.event, 120);
  const page = (e.properties ?? {}) as Record<string, unknown>;
  if (e.type === "page" || e.type === "screen") return text(e.name || page.path || page.url || e.type, 120);
  if (e.type === "identify") return text(e.traits?.email || e.userId || e.anonymousId || e.type, 120);
  return e.type;
}

export function EventRow(props: { event: TrackedEvent; showProfile?: boolean }) {
  const e = props.event;
  const url = (e.properties as Record<string, unknown> | undefined)?.url;
  return (
    <li class="event">
      <details>
        <summary>
          <span class={`type t-${text(e.type, 20).replace(/[^a-z]/g, "")}`}>{text(e.type, 20)}</span>{" "}
          <strong title={eventLabel(e)}>{eventLabel(e)}</strong> <Time value={e.timestamp} />
          {props.showProfile && e.profileId ? (
            <>
              {" "}
              <Link href={`/dashboard/contacts/${encodeURIComponent(e.profileId)}`}>profile</Link>
            </>
          ) : null}
        </summary>
        {url ? (
          <p>
            URL: <Value value={url} max={300} />
          </p>
        ) : null}
        <pre class="json">{prettyJson(e)}</pre>
      </details>
    </li>
  );
}

function Timeline(props: { id: string }) {
  const page = useCursor([props.id]);
  const events = useAsync(() => api.profileEvents(props.id, page.cursor), [props.id, page.cursor]);
  return (
    <Section title="Timeline">
      <Loaded state={events}>
        {(data) =>
          data.items.length === 0 ? (
            <p class="muted">No events.</p>
          ) : (
            <ul class="events">
              {data.items.map((e) => (
                <EventRow event={e} />
              ))}
            </ul>
          )
        }
      </Loaded>
      <CursorPager page={page} next={events.data?.nextCursor} />
    </Section>
  );
}

function EditTraits(props: { profile: Profile; onDone: () => void }) {
  const action = useAction();
  return (
    <form
      class="card form"
      onSubmit={(e: Event) => {
        e.preventDefault();
        const form = e.target as HTMLFormElement;
        action.run(async () => {
          await api.updateTraits(props.profile.id, parseTraits(field(form, "traits")));
          props.onDone();
        }, "Traits saved");
      }}
    >
      <h2>Edit traits</h2>
      <p class="muted">A JSON object; a trait set to null is removed.</p>
      <ErrorBox error={action.error} />
      <textarea
        name="traits"
        rows={10}
        maxlength={50000}
        aria-label="Traits JSON"
        value={prettyJson(props.profile.traits)}
      />
      <div class="actions">
        <button type="submit" disabled={action.busy}>
          Save traits
        </button>
        <button type="button" class="secondary" onClick={props.onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function MergeForm(props: { profile: Profile; onDone: () => void }) {
  const action = useAction();
  return (
    <form
      class="card form"
      onSubmit={(e: Event) => {
        e.preventDefault();
        const other = field(e.target as HTMLFormElement, "other");
        if (!other || other === props.profile.id) return;
        if (!confirm("Merge the other contact into this one? Its identities, events and notes move here.")) return;
        action.run(async () => {
          const loserId = other.includes("@") ? (await api.lookup("email", other)).id : other;
          await api.merge(props.profile.id, loserId);
          props.onDone();
        }, "Contacts merged");
      }}
    >
      <h2>Merge another contact into this one</h2>
      <ErrorBox error={action.error} />
      <label for="merge-other">The other contact's email or profile id</label>
      <input id="merge-other" name="other" required maxlength={254} placeholder="someone@example.com or prf_…" />
      <div class="actions">
        <button type="submit" disabled={action.busy}>
          Merge
        </button>
        <button type="button" class="secondary" onClick={props.onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function Segments(props: { profile: Profile }) {
  const refs = props.profile.segments.map((s) => (typeof s === "string" ? { key: s, enteredAt: null } : s));
  if (refs.length === 0) return <p class="muted">In no segment.</p>;
  return (
    <ul class="plain">
      {refs.map((s) => (
        <li>
          <Link href={`/dashboard/segments/${encodeURIComponent(s.key)}`}>{s.key}</Link>
          {s.enteredAt ? (
            <span class="meta">
              {" "}
              since <Time value={s.enteredAt} />
            </span>
          ) : null}
        </li>
      ))}
    </ul>
  );
}

function Profile360(props: { state: Async<Profile>; profile: Profile }) {
  const p = props.profile;
  const [mode, setMode] = useState<"" | "edit" | "merge">("");
  const action = useAction();
  const reload = props.state.reload;
  return (
    <>
      <div class="page-head">
        <div>
          <p class="crumbs">
            <Link href="/dashboard/contacts">Contacts</Link> /
          </p>
          <h1>{displayName(p)}</h1>
          <p class="meta">
            <code>{p.id}</code> · created <Time value={p.createdAt} /> · updated <Time value={p.updatedAt} relative />
          </p>
        </div>
        <div class="actions">
          {can("marketer") ? (
            <>
              <button type="button" class="secondary" onClick={() => setMode(mode === "edit" ? "" : "edit")}>
                Edit
              </button>
              <button type="button" class="secondary" onClick={() => setMode(mode === "merge" ? "" : "merge")}>
                Merge
              </button>
            </>
          ) : null}
          {can("marketer") && p.mergedFrom?.length ? (
            <button
              type="button"
              class="secondary"
              disabled={action.busy}
              title="Split off the profile most recently merged into this one"
              onClick={() =>
                confirm("Undo the latest merge into this contact?") &&
                action.run(async () => {
                  await api.unmerge(p.id);
                  reload();
                }, "Merge undone")
              }
            >
              Undo last merge
            </button>
          ) : null}
          {can("admin") ? (
            <a class="button secondary" href={api.profileExportUrl(p.id)} download={`${p.id}.json`}>
              Export data
            </a>
          ) : null}
          {can("admin") ? (
            <DeleteButton
              label="Erase"
              question="Erase this person? Their profile, identities, events and CRM data are deleted, and their identifiers are suppressed so they are not recreated."
              action={action}
              remove={() => api.eraseProfile(p.id)}
              then="/dashboard/contacts"
              done="Contact erased"
            />
          ) : null}
        </div>
      </div>
      <ErrorBox error={action.error} />
      {mode === "edit" ? (
        <EditTraits
          profile={p}
          onDone={() => {
            setMode("");
            reload();
          }}
        />
      ) : null}
      {mode === "merge" ? (
        <MergeForm
          profile={p}
          onDone={() => {
            setMode("");
            reload();
          }}
        />
      ) : null}
      <div class="grid-contact">
        <div class="col">
          <CrmCard id={p.id} />
          <Tasks id={p.id} />
          <Notes id={p.id} />
        </div>
        <div class="col">
          <Section title="Traits">
            <KV data={p.traits} empty="No traits." sources={p.traitSources} />
          </Section>
          <Section title="Identities">
            {p.identities.length === 0 ? (
              <p class="muted">None.</p>
            ) : (
              <table class="kv">
                <tbody>
                  {p.identities.map((i) => (
                    <tr>
                      <th>{text(i.type, 50)}</th>
                      <td>{text(i.value, 200)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
            {p.mergedFrom?.length ? (
              <p class="meta">Merged from {p.mergedFrom.map((m) => text(m, 100)).join(", ")}</p>
            ) : null}
          </Section>
          <Section title="Computed traits">
            <KV data={p.computed} empty="Nothing computed yet." />
          </Section>
          <Section title="Segments">
            <Segments profile={p} />
          </Section>
          <Section title="Company">
            {p.company ? (
              <>
                <p class="meta">
                  <code>{text(p.company.id, 100)}</code>
                </p>
                <KV data={p.company.traits} empty="No company traits." />
              </>
            ) : (
              <p class="muted">None.</p>
            )}
          </Section>
          <Timeline id={p.id} />
        </div>
      </div>
      <details class="raw">
        <summary>Raw profile JSON</summary>
        <Json value={p} />
      </details>
    </>
  );
}

export function ContactPage(props: { id: string }) {
  const profile = useAsync(() => api.profile(props.id), [props.id]);
  const resolved = profile.data?.id;
  // A merged-away id resolves to the surviving profile; the address follows it.
  useEffect(() => {
    if (resolved && resolved !== props.id) navigate(`/dashboard/contacts/${encodeURIComponent(resolved)}`, true);
  }, [resolved]);
  return <Loaded state={profile}>{(p) => <Profile360 state={profile} profile={p} />}</Loaded>;
}
