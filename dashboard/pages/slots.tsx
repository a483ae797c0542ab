/**
 * Personalization slots: ordered rules (segment → content), default, holdout, schedule, goal
 * event, per-variant stats and "preview as contact". Content is edited and shown as text: even
 * when it is HTML meant for the customer's site, the dashboard never renders it.
 */
import { useState } from "hono/jsx/dom";
import { api, type Content, type Slot, type SlotPreview, type SlotRule } from "../api";
import { fromLocalInput, num, pct, prettyJson, text, toLocalInput } from "../format";
import { Link, navigate } from "../router";
import { ButtonLink, can, DeleteButton, ErrorBox, field, Loaded, PageHead, Section, useAction, useAsync } from "../ui";

export function SlotsPage() {
  const list = useAsync(() => api.slots(), []);
  return (
    <>
      <PageHead
        title="Personalization"
        action={<ButtonLink minRole="marketer" href="/dashboard/slots/new" label="New slot" />}
      />
      <Loaded state={list}>
        {(items) =>
          items.length === 0 ? (
            <p class="muted">No slots yet. A slot is a placement on your site, like a hero banner.</p>
          ) : (
            <div class="table-wrap">
              <table class="list">
                <thead>
                  <tr>
                    <th>Slot</th>
                    <th class="n">Rules</th>
                    <th class="n">Holdout</th>
                    <th>Schedule</th>
                  </tr>
                </thead>
                <tbody>
                  {items.map((s) => (
                    <tr>
                      <td>
                        <Link href={`/dashboard/slots/${encodeURIComponent(s.key)}`}>{s.key}</Link>
                      </td>
                      <td class="n">{s.rules.length}</td>
                      <td class="n">{s.holdout ? `${s.holdout}%` : "—"}</td>
                      <td>{s.schedule?.start || s.schedule?.end ? "scheduled" : "always"}</td>
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

/** Content as the editor shows it: strings as they are, objects as pretty JSON. */
const contentText = (c: Content | null | undefined) => (typeof c === "string" ? c : c ? prettyJson(c) : "");

/** Reads content back: JSON objects when `json` is ticked, the text otherwise. */
export function parseContent(value: string, json: boolean): Content {
  if (!json) return value;
  const parsed: unknown = JSON.parse(value);
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("JSON content must be an object");
  return parsed as Record<string, unknown>;
}

interface Draft {
  rules: (SlotRule & { json: boolean; text: string })[];
  defaultText: string;
  defaultJson: boolean;
}

function draftOf(slot?: Slot): Draft {
  return {
    rules: (slot?.rules ?? []).map((r) => ({
      ...r,
      json: typeof r.content !== "string",
      text: contentText(r.content),
    })),
    defaultText: contentText(slot?.default ?? ""),
    defaultJson: !!slot && typeof slot.default !== "string",
  };
}

function ContentField(props: {
  id: string;
  label: string;
  text: string;
  json: boolean;
  onText: (t: string) => void;
  onJson: (j: boolean) => void;
}) {
  return (
    <div class="content-field">
      <label for={props.id}>{props.label}</label>
      <textarea
        id={props.id}
        class="code"
        rows={3}
        maxlength={65536}
        value={props.text}
        onChange={(e: Event) => props.onText((e.target as HTMLTextAreaElement).value)}
      />
      <label class="check">
        <input
          type="checkbox"
          checked={props.json}
          onChange={(e: Event) => props.onJson((e.target as HTMLInputElement).checked)}
        />{" "}
        JSON object
      </label>
    </div>
  );
}

function SlotForm(props: { slot?: Slot; segments: string[]; onSaved: (key: string) => void }) {
  const existing = props.slot;
  const [draft, setDraft] = useState<Draft>(() => draftOf(existing));
  const action = useAction();
  const editable = can("marketer");
  const setRule = (i: number, patch: Partial<Draft["rules"][number]>) =>
    setDraft({ ...draft, rules: draft.rules.map((r, j) => (j === i ? { ...r, ...patch } : r)) });
  const move = (i: number, by: number) => {
    const rules = [...draft.rules];
    const [r] = rules.splice(i, 1);
    rules.splice(i + by, 0, r);
    setDraft({ ...draft, rules });
  };
  return (
    <form
      class="card form"
      onSubmit={(e: Event) => {
        e.preventDefault();
        const form = e.target as HTMLFormElement;
        const key = existing?.key ?? field(form, "key");
        action.run(
          async () => {
            const start = fromLocalInput(field(form, "start"));
            const end = fromLocalInput(field(form, "end"));
            const goal = field(form, "goal");
            await api.saveSlot(key, {
              default: parseContent(draft.defaultText, draft.defaultJson),
              rules: draft.rules.map((r, i) => {
                try {
                  return { ...(r.id ? { id: r.id } : {}), segment: r.segment, content: parseContent(r.text, r.json) };
                } catch (err) {
                  throw new Error(`Rule ${i + 1}: ${err instanceof Error ? err.message : "invalid content"}`);
                }
              }),
              holdout: Number(field(form, "holdout")) || 0,
              schedule: start || end ? { start, end } : null,
              goalEvent: goal || null,
            });
            props.onSaved(key);
          },
          existing ? "Slot saved" : "Slot created",
        );
      }}
    >
      <ErrorBox error={action.error} />
      <fieldset disabled={!editable} class="plain">
        {existing ? null : (
          <>
            <label for="slot-key">Key</label>
            <input
              id="slot-key"
              name="key"
              required
              maxlength={64}
              pattern="[a-z0-9][a-z0-9_\-]{0,63}"
              placeholder="hero"
              title="Lower-case letters, digits, - and _"
            />
          </>
        )}
        <h2>Rules, in order: the first match wins</h2>
        {draft.rules.length === 0 ? <p class="muted">No rules: everyone gets the default.</p> : null}
        <ol class="slot-rules">
          {draft.rules.map((r, i) => (
            <li class="cond">
              <div class="row">
                <label for={`rule-seg-${i}`}>If in segment</label>
                <select
                  id={`rule-seg-${i}`}
                  value={r.segment}
                  onChange={(e: Event) => setRule(i, { segment: (e.target as HTMLSelectElement).value })}
                >
                  <option value="">Choose…</option>
                  {[...new Set([...props.segments, r.segment].filter(Boolean))].map((k) => (
                    <option value={k}>{k}</option>
                  ))}
                </select>
                {r.id ? (
                  <code class="muted" title="Variant id">
                    {r.id}
                  </code>
                ) : null}
                <span class="spacer" />
                <button type="button" class="link" disabled={i === 0} onClick={() => move(i, -1)} title="Move up">
                  ↑
                </button>
                <button
                  type="button"
                  class="link"
                  disabled={i === draft.rules.length - 1}
                  onClick={() => move(i, 1)}
                  title="Move down"
                >
                  ↓
                </button>
                <button
                  type="button"
                  class="link"
                  onClick={() => setDraft({ ...draft, rules: draft.rules.filter((_, j) => j !== i) })}
                  title="Remove rule"
                >
                  ✕
                </button>
              </div>
              <ContentField
                id={`rule-content-${i}`}
                label="Show"
                text={r.text}
                json={r.json}
                onText={(t) => setRule(i, { text: t })}
                onJson={(j) => setRule(i, { json: j })}
              />
            </li>
          ))}
        </ol>
        {draft.rules.length < 50 ? (
          <button
            type="button"
            class="secondary small"
            onClick={() =>
              setDraft({ ...draft, rules: [...draft.rules, { segment: "", content: "", text: "", json: false }] })
            }
          >
            + rule
          </button>
        ) : null}
        <ContentField
          id="slot-default"
          label="Otherwise (default content)"
          text={draft.defaultText}
          json={draft.defaultJson}
          onText={(t) => setDraft({ ...draft, defaultText: t })}
          onJson={(j) => setDraft({ ...draft, defaultJson: j })}
        />
        <div class="grid3">
          <div>
            <label for="slot-holdout">Holdout (%)</label>
            <input
              id="slot-holdout"
              name="holdout"
              type="number"
              min={0}
              max={100}
              step="any"
              value={String(existing?.holdout ?? 0)}
            />
          </div>
          <div>
            <label for="slot-start">Starts</label>
            <input id="slot-start" name="start" type="datetime-local" value={toLocalInput(existing?.schedule?.start)} />
          </div>
          <div>
            <label for="slot-end">Ends</label>
            <input id="slot-end" name="end" type="datetime-local" value={toLocalInput(existing?.schedule?.end)} />
          </div>
        </div>
        <label for="slot-goal">Goal event (for conversions)</label>
        <input
          id="slot-goal"
          name="goal"
          maxlength={200}
          placeholder="Order Completed"
          value={existing?.goalEvent ?? ""}
        />
      </fieldset>
      {editable ? (
        <div class="actions">
          <button type="submit" disabled={action.busy}>
            {existing ? "Save slot" : "Create slot"}
          </button>
        </div>
      ) : null}
    </form>
  );
}

function Stats(props: { slotKey: string }) {
  const stats = useAsync(() => api.slotStats(props.slotKey), [props.slotKey]);
  return (
    <Section title="Per-variant results (30 days)">
      <Loaded state={stats}>
        {(s) =>
          s.variants.length === 0 ? (
            <p class="muted">No exposures yet.</p>
          ) : (
            <>
              <table class="list">
                <thead>
                  <tr>
                    <th>Variant</th>
                    <th class="n">Exposures</th>
                    <th class="n">Visitors</th>
                    <th class="n">Conversions</th>
                    <th class="n">Rate</th>
                  </tr>
                </thead>
                <tbody>
                  {s.variants.map((v) => {
                    const base = v.visitors ?? v.exposures;
                    return (
                      <tr>
                        <td>{text(v.variant, 80)}</td>
                        <td class="n">{num(v.exposures)}</td>
                        <td class="n">{num(v.visitors)}</td>
                        <td class="n">{num(v.conversions)}</td>
                        <td class="n">{v.conversions === null ? "—" : pct(v.conversions, base)}</td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
              {s.goalEvent ? null : <p class="muted">Set a goal event to count conversions.</p>}
            </>
          )
        }
      </Loaded>
    </Section>
  );
}

function PreviewAs(props: { slotKey: string }) {
  const [result, setResult] = useState<SlotPreview | null>(null);
  const action = useAction();
  return (
    <Section title="Preview as contact">
      <form
        class="inline"
        onSubmit={(e: Event) => {
          e.preventDefault();
          const who = field(e.target as HTMLFormElement, "profile");
          if (!who) return;
          action.run(async () => {
            // An email is looked up first; anything else is taken as a profile id.
            const id = who.includes("@") ? (await api.lookup("email", who)).id : who;
            setResult(await api.slotPreview(props.slotKey, id));
          });
        }}
      >
        <input name="profile" placeholder="Email or profile id" aria-label="Contact" maxlength={254} required />
        <button type="submit" class="secondary" disabled={action.busy}>
          Preview
        </button>
      </form>
      <ErrorBox error={action.error} />
      {result ? (
        <div class="slot-preview">
          <p>
            Variant <strong>{text(result.variant, 80)}</strong>
            {result.rule ? ` (rule for segment ${text(result.rule.segment, 100)})` : ""}
            {result.heldOut ? " — in the holdout group" : ""}
            {result.inSchedule === false ? " — outside the schedule" : ""}
          </p>
          <pre class="json">{contentText(result.content)}</pre>
        </div>
      ) : null}
    </Section>
  );
}

export function SlotPage(props: { slotKey?: string }) {
  const key = props.slotKey;
  const slot = useAsync(() => (key ? api.slot(key) : Promise.resolve(undefined)), [key]);
  const segments = useAsync(() => api.segments().catch(() => []), []);
  const action = useAction();
  const keys = (segments.data ?? []).map((s) => s.key);
  return (
    <>
      <p class="crumbs">
        <Link href="/dashboard/slots">Personalization</Link> /
      </p>
      {key ? (
        <Loaded state={slot}>
          {(s) =>
            s ? (
              <>
                <PageHead
                  title={
                    <>
                      Slot <code>{s.key}</code>
                    </>
                  }
                  action={
                    can("marketer") ? (
                      <DeleteButton
                        question={`Delete the slot ${s.key}?`}
                        action={action}
                        remove={() => api.deleteSlot(s.key)}
                        then="/dashboard/slots"
                        done="Slot deleted"
                      />
                    ) : null
                  }
                />
                <ErrorBox error={action.error} />
                <p class="muted">
                  On your site: <code>{`<div data-tessera-slot="${s.key}">default HTML</div>`}</code>
                </p>
                {/* Re-mounted after a save, so the draft picks up the rule ids the server assigned. */}
                <SlotForm
                  key={s.updatedAt ?? JSON.stringify(s.rules)}
                  slot={s}
                  segments={keys}
                  onSaved={() => slot.reload()}
                />
                <div class="grid2">
                  <Stats slotKey={s.key} />
                  <PreviewAs slotKey={s.key} />
                </div>
              </>
            ) : null
          }
        </Loaded>
      ) : (
        <>
          <h1>New slot</h1>
          <SlotForm segments={keys} onSaved={(k) => navigate(`/dashboard/slots/${encodeURIComponent(k)}`, true)} />
        </>
      )}
    </>
  );
}
