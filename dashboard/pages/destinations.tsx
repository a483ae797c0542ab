/** Webhook destinations: create (the signing secret is shown once), enable/disable, delivery log. */
import { useState } from "hono/jsx/dom";
import { api, type Destination } from "../api";
import { splitList, text } from "../format";
import { Link } from "../router";
import {
  CopyButton,
  CursorPager,
  DeleteButton,
  ErrorBox,
  field,
  Loaded,
  Section,
  Time,
  useAction,
  useAsync,
  useCursor,
} from "../ui";

function CreateForm(props: { onCreated: (d: Destination) => void }) {
  const segments = useAsync(() => api.segments().catch(() => []), []);
  const action = useAction();
  return (
    <form
      class="card form"
      onSubmit={(e: Event) => {
        e.preventDefault();
        const form = e.target as HTMLFormElement;
        const chosen = [...form.querySelectorAll<HTMLInputElement>("input[name=segment]:checked")].map((i) => i.value);
        const events = splitList(field(form, "events"));
        action.run(async () => {
          const created = await api.createDestination({
            name: field(form, "name"),
            url: field(form, "url"),
            segments: chosen,
            ...(events.length ? { events } : {}),
          });
          form.reset();
          props.onCreated(created);
        }, "Destination created");
      }}
    >
      <h2>New destination</h2>
      <ErrorBox error={action.error} />
      <label for="d-name">Name</label>
      <input id="d-name" name="name" required maxlength={200} placeholder="Email automation" />
      <label for="d-url">Webhook URL (https)</label>
      <input
        id="d-url"
        name="url"
        type="url"
        required
        maxlength={2048}
        placeholder="https://hooks.example.com/tessera"
      />
      <fieldset class="plain">
        <legend>Segments (entered / exited)</legend>
        {(segments.data ?? []).length === 0 ? <p class="muted">No segments yet.</p> : null}
        <div class="checks">
          {(segments.data ?? []).map((s) => (
            <label class="check">
              <input type="checkbox" name="segment" value={s.key} /> {s.name || s.key}
            </label>
          ))}
        </div>
      </fieldset>
      <label for="d-events">Events to forward (comma-separated names, optional)</label>
      <input id="d-events" name="events" maxlength={2000} placeholder="Order Completed, Signed Up" />
      <div class="actions">
        <button type="submit" disabled={action.busy}>
          Create destination
        </button>
      </div>
    </form>
  );
}

export function DestinationsPage() {
  const list = useAsync(() => api.destinations(), []);
  const [created, setCreated] = useState<Destination | null>(null);
  return (
    <>
      <h1>Destinations</h1>
      {created?.secret ? (
        <div class="card secret" role="alert">
          <h2>Signing secret for {text(created.name, 100)}</h2>
          <p>
            Copy it now: it is shown only once. Receivers verify the <code>webhook-signature</code> header with it
            (Standard Webhooks).
          </p>
          <p class="row">
            <code class="select-all">{created.secret}</code> <CopyButton value={created.secret} />
          </p>
          <button type="button" class="secondary small" onClick={() => setCreated(null)}>
            I have saved it
          </button>
        </div>
      ) : null}
      <Loaded state={list}>
        {(items) =>
          items.length === 0 ? (
            <p class="muted">No destinations yet.</p>
          ) : (
            <div class="table-wrap">
              <table class="list">
                <thead>
                  <tr>
                    <th>Name</th>
                    <th>URL</th>
                    <th>Segments</th>
                    <th>Events</th>
                    <th>Status</th>
                  </tr>
                </thead>
                <tbody>
                  {items.map((d) => (
                    <tr>
                      <td>
                        <Link href={`/dashboard/destinations/${encodeURIComponent(d.id)}`}>{text(d.name, 100)}</Link>
                      </td>
                      <td>
                        <code>{text(d.url, 80)}</code>
                      </td>
                      <td>{d.segments.join(", ")}</td>
                      <td>{(d.events ?? []).join(", ")}</td>
                      <td>{d.enabled === false ? "disabled" : "enabled"}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )
        }
      </Loaded>
      <CreateForm
        onCreated={(d) => {
          setCreated(d);
          list.reload();
        }}
      />
    </>
  );
}

export function DestinationPage(props: { id: string }) {
  const destination = useAsync(() => api.destination(props.id), [props.id]);
  const page = useCursor([props.id]);
  const deliveries = useAsync(() => api.deliveries(props.id, page.cursor), [props.id, page.cursor]);
  const action = useAction();
  return (
    <>
      <p class="crumbs">
        <Link href="/dashboard/destinations">Destinations</Link> /
      </p>
      <Loaded state={destination}>
        {(d) => (
          <div class="page-head">
            <div>
              <h1>{text(d.name, 100)}</h1>
              <p class="meta">
                <code>{text(d.url, 200)}</code>
              </p>
            </div>
            <div class="actions">
              <button
                type="button"
                class="secondary"
                disabled={action.busy}
                onClick={() =>
                  action.run(
                    async () => {
                      await api.updateDestination(d.id, { enabled: d.enabled === false });
                      destination.reload();
                    },
                    d.enabled === false ? "Enabled" : "Disabled",
                  )
                }
              >
                {d.enabled === false ? "Enable" : "Disable"}
              </button>
              <DeleteButton
                question="Delete this destination? Pending deliveries are dropped."
                action={action}
                remove={() => api.deleteDestination(d.id)}
                then="/dashboard/destinations"
                done="Destination deleted"
              />
            </div>
          </div>
        )}
      </Loaded>
      <ErrorBox error={action.error} />
      <Section
        title="Delivery log"
        actions={
          <button type="button" class="secondary small" onClick={deliveries.reload}>
            Refresh
          </button>
        }
      >
        <Loaded state={deliveries}>
          {(data) =>
            data.items.length === 0 ? (
              <p class="muted">Nothing delivered yet.</p>
            ) : (
              <div class="table-wrap">
                <table class="list">
                  <thead>
                    <tr>
                      <th>Time</th>
                      <th>Type</th>
                      <th>Status</th>
                      <th class="n">Attempts</th>
                      <th>Last response</th>
                      <th>Webhook id</th>
                    </tr>
                  </thead>
                  <tbody>
                    {data.items.map((x) => (
                      <tr>
                        <td>
                          <Time value={x.createdAt} />
                        </td>
                        <td>{text(x.type, 40)}</td>
                        <td>
                          <span class={`badge ${text(x.status, 20)}`}>{text(x.status, 20)}</span>
                        </td>
                        <td class="n">{x.attempts}</td>
                        <td>
                          {text(
                            [x.lastStatus, x.lastError].filter((v) => v !== null && v !== undefined).join(" "),
                            200,
                          )}
                        </td>
                        <td>
                          <code>{text(x.id, 60)}</code>
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )
          }
        </Loaded>
        <CursorPager page={page} next={deliveries.data?.nextCursor} />
      </Section>
    </>
  );
}
