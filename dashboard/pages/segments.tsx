/** Segments: the list with member counts, and the editor (rule builder, live preview, members, history). */
import { useEffect, useState } from "hono/jsx/dom";
import { api, type Preview, type Rule, type Segment } from "../api";
import { displayName, num } from "../format";
import { Link, navigate } from "../router";
import { isComplete } from "../rules";
import {
  ButtonLink,
  CursorPager,
  can,
  DeleteButton,
  ErrorBox,
  field,
  Loaded,
  PageHead,
  Section,
  Time,
  useAction,
  useAsync,
  useCursor,
} from "../ui";
import { RuleEditor } from "./rule-builder";

export const memberCount = (s: Segment) => s.memberCount ?? s.count;

export function SegmentsPage() {
  const list = useAsync(() => api.segments(), []);
  return (
    <>
      <PageHead
        title="Segments"
        action={<ButtonLink minRole="marketer" href="/dashboard/segments/new" label="New segment" />}
      />
      <Loaded state={list}>
        {(items) =>
          items.length === 0 ? (
            <p class="muted">No segments yet.</p>
          ) : (
            <div class="table-wrap">
              <table class="list">
                <thead>
                  <tr>
                    <th>Name</th>
                    <th>Key</th>
                    <th class="n">Members</th>
                    <th>Updated</th>
                  </tr>
                </thead>
                <tbody>
                  {items.map((s) => (
                    <tr>
                      <td>
                        <Link href={`/dashboard/segments/${encodeURIComponent(s.key)}`}>{s.name || s.key}</Link>
                        {s.public ? <span class="badge">public</span> : null}
                      </td>
                      <td>
                        <code>{s.key}</code>
                      </td>
                      <td class="n">{num(memberCount(s))}</td>
                      <td>
                        <Time value={s.updatedAt} relative />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )
        }
      </Loaded>
    </>
  );
}

/** Asks the server for the count and a sample, 400 ms after the last edit; late answers are dropped. */
function usePreview(rule: Rule) {
  const [state, setState] = useState<{ preview?: Preview; error?: unknown; pending: boolean }>({ pending: false });
  const json = JSON.stringify(rule);
  useEffect(() => {
    if (!isComplete(rule)) {
      setState({ pending: false });
      return;
    }
    let live = true;
    setState((s) => ({ ...s, pending: true }));
    const timer = setTimeout(() => {
      api.previewSegment(rule).then(
        (preview) => live && setState({ preview, pending: false }),
        (error) => live && setState({ error, pending: false }),
      );
    }, 400);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [json]);
  return state;
}

function PreviewPanel(props: { rule: Rule }) {
  const p = usePreview(props.rule);
  return (
    <aside class="card preview" aria-live="polite">
      <h2>Preview</h2>
      {p.error ? <ErrorBox error={p.error} /> : null}
      {!isComplete(props.rule) ? <p class="muted">Complete the conditions to see who matches.</p> : null}
      {p.preview ? (
        <>
          <p class={`big${p.pending ? " stale" : ""}`}>
            <span class="preview-count">{num(p.preview.count)}</span> profiles
          </p>
          <ul class="plain">
            {p.preview.sample.slice(0, 10).map((s) => (
              <li>
                <Link href={`/dashboard/contacts/${encodeURIComponent(s.id)}`}>{displayName(s)}</Link>
              </li>
            ))}
          </ul>
        </>
      ) : p.pending ? (
        <p class="muted">Counting…</p>
      ) : null}
    </aside>
  );
}

function Members(props: { segmentKey: string }) {
  const page = useCursor([props.segmentKey]);
  const members = useAsync(() => api.members(props.segmentKey, page.cursor), [props.segmentKey, page.cursor]);
  return (
    <Section
      title="Members"
      actions={
        <a class="button secondary small" href={api.segmentExportUrl(props.segmentKey)} download>
          Export CSV
        </a>
      }
    >
      <Loaded state={members}>
        {(data) =>
          data.items.length === 0 ? (
            <p class="muted">No members.</p>
          ) : (
            <table class="list">
              <tbody>
                {data.items.map((m) => {
                  const id = m.profileId ?? m.id ?? "";
                  return (
                    <tr>
                      <td>
                        <Link href={`/dashboard/contacts/${encodeURIComponent(id)}`}>{displayName({ ...m, id })}</Link>
                      </td>
                      <td>{m.enteredAt ? <Time value={m.enteredAt} /> : null}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          )
        }
      </Loaded>
      <CursorPager page={page} next={members.data?.nextCursor} />
    </Section>
  );
}

function History(props: { segmentKey: string }) {
  const page = useCursor([props.segmentKey]);
  const history = useAsync(() => api.history(props.segmentKey, page.cursor), [props.segmentKey, page.cursor]);
  return (
    <Section title="Enter / exit history">
      <Loaded state={history}>
        {(data) =>
          data.items.length === 0 ? (
            <p class="muted">No changes yet.</p>
          ) : (
            <table class="list">
              <tbody>
                {data.items.map((h) => (
                  <tr>
                    <td>
                      <span class={`badge ${h.change}`}>{h.change}</span>
                    </td>
                    <td>
                      <Link href={`/dashboard/contacts/${encodeURIComponent(h.profileId)}`}>{h.profileId}</Link>
                    </td>
                    <td>
                      <Time value={h.at} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Loaded>
      <CursorPager page={page} next={history.data?.nextCursor} />
    </Section>
  );
}

function SegmentForm(props: { segment?: Segment; keys: string[]; onSaved: (s: Segment) => void }) {
  const existing = props.segment;
  const [rule, setRule] = useState<Rule>(existing?.rule ?? { all: [{ trait: "", op: "eq", value: "" }] });
  const action = useAction();
  const editable = can("marketer");
  return (
    <div class="segment-edit">
      <form
        class="card form"
        onSubmit={(e: Event) => {
          e.preventDefault();
          const form = e.target as HTMLFormElement;
          const body = {
            name: field(form, "name"),
            description: field(form, "description") || null,
            public: (form.elements.namedItem("public") as HTMLInputElement).checked,
            rule,
          };
          action.run(
            async () => {
              const saved = existing
                ? await api.updateSegment(existing.key, body)
                : await api.createSegment({ key: field(form, "key"), ...body });
              props.onSaved(saved);
            },
            existing ? "Segment saved" : "Segment created",
          );
        }}
      >
        <ErrorBox error={action.error} />
        <fieldset disabled={!editable} class="plain">
          <div class="grid2">
            <div>
              <label for="seg-name">Name</label>
              <input id="seg-name" name="name" required maxlength={200} value={existing?.name ?? ""} />
            </div>
            <div>
              <label for="seg-key">Key</label>
              <input
                id="seg-key"
                name="key"
                required
                maxlength={64}
                pattern="[a-z0-9][a-z0-9_\-]{0,63}"
                title="Lower-case letters, digits, - and _"
                value={existing?.key ?? ""}
                readOnly={!!existing}
              />
            </div>
          </div>
          <label for="seg-desc">Description</label>
          <input id="seg-desc" name="description" maxlength={1000} value={existing?.description ?? ""} />
          <label class="check">
            <input type="checkbox" name="public" checked={!!existing?.public} /> Public: its key may appear in
            personalization responses
          </label>
        </fieldset>
        <h2>Rule</h2>
        <RuleEditor
          rule={rule}
          onChange={setRule}
          segments={props.keys.filter((k) => k !== existing?.key)}
          readOnly={!editable}
        />
        {editable ? (
          <div class="actions">
            <button type="submit" disabled={action.busy}>
              {existing ? "Save segment" : "Create segment"}
            </button>
          </div>
        ) : null}
      </form>
      <PreviewPanel rule={rule} />
    </div>
  );
}

export function SegmentPage(props: { segmentKey?: string }) {
  const key = props.segmentKey;
  const segment = useAsync(() => (key ? api.segment(key) : Promise.resolve(undefined)), [key]);
  const all = useAsync(() => api.segments().catch(() => []), []);
  const action = useAction();
  const keys = (all.data ?? []).map((s) => s.key);
  const onSaved = (s: Segment) => {
    if (!key) navigate(`/dashboard/segments/${encodeURIComponent(s.key)}`, true);
    else segment.reload();
  };
  return (
    <>
      <p class="crumbs">
        <Link href="/dashboard/segments">Segments</Link> /
      </p>
      {key ? (
        <Loaded state={segment}>
          {(s) =>
            s ? (
              <>
                <PageHead
                  title={s.name || s.key}
                  action={
                    <div class="actions">
                      <span class="badge">{num(s.memberCount ?? s.count)} members</span>
                      {can("marketer") ? (
                        <DeleteButton
                          question={`Delete the segment ${s.key}?`}
                          action={action}
                          remove={() => api.deleteSegment(s.key)}
                          then="/dashboard/segments"
                          done="Segment deleted"
                        />
                      ) : null}
                    </div>
                  }
                />
                <ErrorBox error={action.error} />
                <SegmentForm segment={s} keys={keys} onSaved={onSaved} />
                <div class="grid2">
                  <Members segmentKey={s.key} />
                  <History segmentKey={s.key} />
                </div>
              </>
            ) : null
          }
        </Loaded>
      ) : (
        <>
          <h1>New segment</h1>
          <SegmentForm keys={keys} onSaved={onSaved} />
        </>
      )}
    </>
  );
}
