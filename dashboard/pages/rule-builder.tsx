/**
 * The segment rule builder: groups (all / any), not, and trait, computed-trait, event and
 * segment conditions with the operators of issue 6. A raw JSON tab edits the same rule.
 */
import { useEffect, useState } from "hono/jsx/dom";
import type { Op, PropertyFilter, Rule } from "../api";
import { prettyJson } from "../format";
import {
  asRoot,
  childrenOf,
  coerceValue,
  computedNames,
  countOps,
  type Group,
  kindOf,
  type LeafKind,
  leafCount,
  newLeaf,
  noValue,
  ops,
  propertyOps,
  valueText,
  withChildren,
  withFilter,
  withOp,
} from "../rules";

type Change = (r: Rule) => void;

const target = (e: Event) => e.target as HTMLInputElement;

function OpSelect(props: { op: Op; onChange: (op: Op) => void; label: string; only?: Op[] }) {
  return (
    <select aria-label={props.label} value={props.op} onChange={(e: Event) => props.onChange(target(e).value as Op)}>
      {ops
        .filter((o) => !props.only || props.only.includes(o.op))
        .map((o) => (
          <option value={o.op}>{o.label}</option>
        ))}
    </select>
  );
}

function ValueInput(props: { op: Op; value: unknown; onChange: (v: unknown) => void }) {
  if (noValue(props.op)) return null;
  const hint =
    props.op === "within_last"
      ? "30m, 2h, 7d"
      : props.op === "in" || props.op === "not_in"
        ? "a, b, c"
        : props.op === "before" || props.op === "after"
          ? "2025-01-31"
          : "value";
  return (
    <input
      aria-label="Value"
      class="value"
      placeholder={hint}
      maxlength={500}
      value={valueText(props.value)}
      onChange={(e: Event) => props.onChange(coerceValue(props.op, target(e).value))}
    />
  );
}

function Filters(props: { filters: PropertyFilter[] | undefined; onChange: (f: PropertyFilter[]) => void }) {
  const list = props.filters ?? [];
  return (
    <div class="filters-list">
      {list.map((f, i) => (
        <div class="row">
          <span class="muted">where</span>
          <input
            aria-label="Property"
            placeholder="property (e.g. category, path)"
            maxlength={200}
            value={f.property}
            onChange={(e: Event) => props.onChange(withFilter(list, i, { ...f, property: target(e).value }))}
          />
          <OpSelect
            label="Property operator"
            op={f.op}
            only={propertyOps}
            onChange={(op) => props.onChange(withFilter(list, i, withOp(f, op)))}
          />
          <ValueInput
            op={f.op}
            value={f.value}
            onChange={(value) => props.onChange(withFilter(list, i, { ...f, value }))}
          />
          <button
            type="button"
            class="link"
            onClick={() => props.onChange(withFilter(list, i, null))}
            title="Remove filter"
          >
            ✕
          </button>
        </div>
      ))}
      {list.length < 10 ? (
        <button
          type="button"
          class="link"
          onClick={() => props.onChange([...list, { property: "", op: "eq", value: "" }])}
        >
          + property filter
        </button>
      ) : null}
    </div>
  );
}

function Leaf(props: { rule: Rule; onChange: Change; segments: string[] }) {
  const r = props.rule;
  const set = props.onChange;
  if ("trait" in r || "computed" in r) {
    const isTrait = "trait" in r;
    const name = isTrait ? r.trait : r.computed;
    return (
      <>
        <input
          aria-label={isTrait ? "Trait name" : "Computed trait"}
          placeholder={isTrait ? "trait (e.g. plan)" : "computed trait"}
          list={isTrait ? undefined : "computed-names"}
          maxlength={200}
          value={name}
          onChange={(e: Event) =>
            set(
              isTrait
                ? { ...r, trait: target(e).value }
                : { ...(r as { computed: string; op: Op }), computed: target(e).value },
            )
          }
        />
        <OpSelect label="Operator" op={r.op} onChange={(op) => set(withOp(r, op) as Rule)} />
        <ValueInput op={r.op} value={r.value} onChange={(value) => set({ ...r, value } as Rule)} />
      </>
    );
  }
  if ("event" in r || "page" in r) {
    const count = r.count ?? { op: "gte" as Op, value: 1 };
    return (
      <div class="event-cond">
        <div class="row">
          {"event" in r ? (
            <input
              aria-label="Event name"
              placeholder="event (e.g. Product Added)"
              maxlength={200}
              value={r.event}
              onChange={(e: Event) => set({ ...r, event: target(e).value })}
            />
          ) : (
            <span class="muted">page views</span>
          )}
          <span class="muted">count</span>
          <OpSelect
            label="Count operator"
            op={count.op}
            only={countOps}
            onChange={(op) => set({ ...r, count: { op, value: count.value } })}
          />
          <input
            aria-label="Count"
            type="number"
            min={0}
            max={100000}
            class="count"
            value={String(count.value)}
            onChange={(e: Event) => set({ ...r, count: { op: count.op, value: Number(target(e).value) || 0 } })}
          />
          <span class="muted">within</span>
          <input
            aria-label="Within"
            class="duration"
            placeholder="ever"
            pattern="\d{1,4}[mhd]"
            maxlength={6}
            value={r.within ?? ""}
            onChange={(e: Event) => {
              const { within: _old, ...rest } = r;
              const within = target(e).value.trim();
              set(within ? { ...rest, within } : rest);
            }}
          />
        </div>
        <Filters
          filters={r.where}
          onChange={(where) => {
            const { where: _old, ...rest } = r;
            set(where.length ? { ...rest, where } : rest);
          }}
        />
      </div>
    );
  }
  if ("segment" in r) {
    return (
      <select aria-label="Segment" value={r.segment} onChange={(e: Event) => set({ segment: target(e).value })}>
        <option value="">Choose a segment…</option>
        {[...new Set([...props.segments, r.segment].filter(Boolean))].map((k) => (
          <option value={k}>{k}</option>
        ))}
      </select>
    );
  }
  return <code class="muted">{JSON.stringify(r)}</code>;
}

const kinds: { kind: LeafKind; label: string }[] = [
  { kind: "trait", label: "Trait" },
  { kind: "computed", label: "Computed trait" },
  { kind: "event", label: "Event" },
  { kind: "page", label: "Page view" },
  { kind: "segment", label: "In segment" },
];

/** One condition or group, with its own "not" toggle and remove button. */
function Node(props: { rule: Rule; onChange: Change; onRemove: () => void; segments: string[]; depth: number }) {
  const negated = "not" in props.rule;
  const inner = negated ? (props.rule as { not: Rule }).not : props.rule;
  const wrap = (r: Rule) => props.onChange(negated ? { not: r } : r);
  const kind = kindOf(inner);
  return (
    <div class={`cond${negated ? " negated" : ""}`}>
      <div class="row">
        <label class="not" title="Match profiles for which this is false">
          <input
            type="checkbox"
            checked={negated}
            onChange={(e: Event) => props.onChange(target(e).checked ? { not: inner } : inner)}
          />{" "}
          not
        </label>
        {kind === "group" ? (
          <GroupNode group={inner as Group} onChange={wrap} segments={props.segments} depth={props.depth + 1} />
        ) : (
          <>
            {kind !== "other" && kind !== "not" ? (
              <select
                aria-label="Condition type"
                value={kind}
                onChange={(e: Event) => wrap(newLeaf(target(e).value as LeafKind))}
              >
                {kinds.map((k) => (
                  <option value={k.kind}>{k.label}</option>
                ))}
              </select>
            ) : null}
            <Leaf rule={inner} onChange={wrap} segments={props.segments} />
          </>
        )}
        <button type="button" class="link remove" onClick={props.onRemove} title="Remove">
          ✕
        </button>
      </div>
    </div>
  );
}

function GroupNode(props: { group: Group; onChange: (g: Group) => void; segments: string[]; depth: number }) {
  const children = childrenOf(props.group);
  const mode = "all" in props.group ? "all" : "any";
  const setChildren = (c: Rule[]) => props.onChange(withChildren(props.group, c));
  return (
    <div class="group">
      <div class="row">
        <select
          aria-label="Group match"
          value={mode}
          onChange={(e: Event) => props.onChange(target(e).value === "all" ? { all: children } : { any: children })}
        >
          <option value="all">All of</option>
          <option value="any">Any of</option>
        </select>
        <span class="muted">these conditions</span>
      </div>
      {children.map((c, i) => (
        <Node
          rule={c}
          segments={props.segments}
          depth={props.depth}
          onChange={(r) => setChildren(children.map((x, j) => (j === i ? r : x)))}
          onRemove={() => setChildren(children.filter((_, j) => j !== i))}
        />
      ))}
      <div class="row add">
        <button type="button" class="secondary small" onClick={() => setChildren([...children, newLeaf("trait")])}>
          + condition
        </button>
        {props.depth < 6 ? (
          <button
            type="button"
            class="secondary small"
            onClick={() => setChildren([...children, { any: [newLeaf("trait")] }])}
          >
            + group
          </button>
        ) : null}
      </div>
    </div>
  );
}

/** The builder and the raw JSON tab over one rule value. */
export function RuleEditor(props: { rule: Rule; onChange: Change; segments: string[]; readOnly?: boolean }) {
  const [tab, setTab] = useState<"builder" | "json">("builder");
  const [raw, setRaw] = useState(prettyJson(props.rule));
  const [rawError, setRawError] = useState("");
  // Keep the JSON text in step with builder edits, unless the user is typing in it.
  useEffect(() => {
    if (tab === "builder") setRaw(prettyJson(props.rule));
  }, [JSON.stringify(props.rule), tab]);
  return (
    <div class="rule-editor">
      <div class="tabs" role="tablist">
        <button type="button" role="tab" aria-selected={String(tab === "builder")} onClick={() => setTab("builder")}>
          Builder
        </button>
        <button type="button" role="tab" aria-selected={String(tab === "json")} onClick={() => setTab("json")}>
          JSON
        </button>
        <span class="muted">
          {leafCount(props.rule)} condition{leafCount(props.rule) === 1 ? "" : "s"}
        </span>
      </div>
      <datalist id="computed-names">
        {computedNames.map((n) => (
          <option value={n} />
        ))}
      </datalist>
      {tab === "builder" ? (
        <fieldset disabled={props.readOnly} class="builder">
          <GroupNode
            group={asRoot(props.rule)}
            onChange={(g) => props.onChange(g)}
            segments={props.segments}
            depth={0}
          />
        </fieldset>
      ) : (
        <>
          <textarea
            class="code"
            rows={16}
            aria-label="Rule JSON"
            maxlength={100000}
            readOnly={props.readOnly}
            value={raw}
            onChange={(e: Event) => {
              const value = target(e).value;
              setRaw(value);
              try {
                const parsed: unknown = JSON.parse(value);
                if (!parsed || typeof parsed !== "object" || Array.isArray(parsed))
                  throw new Error("A rule is a JSON object");
                setRawError("");
                props.onChange(parsed as Rule);
              } catch (err) {
                setRawError(err instanceof Error ? err.message : "Invalid JSON");
              }
            }}
          />
          {rawError ? <p class="error">{rawError}</p> : null}
        </>
      )}
    </div>
  );
}
