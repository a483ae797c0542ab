/**
 * Traits merge by event time, one top-level trait at a time: each trait remembers when (`t`, the
 * event's time) and from where (`s`, the site; `m`, the message) its value came, and an event
 * older than that never overwrites it, whatever order events arrive in. A nested object is one
 * value (it replaces the whole top-level trait), so a late event can't leave half of an address
 * from one time and half from another. `null` unsets a trait; the unset is remembered (the trait
 * keeps its meta without a value) so that an older event arriving later can't bring it back.
 */

export interface TraitStamp {
  /** Event time (ms) of the value (or of the unset). */
  t: number;
  /** Source: the site the event came from. */
  s: string;
  /** The message that set it. */
  m?: string;
}

export type TraitMeta = Record<string, TraitStamp>;

export interface TraitState {
  traits: Record<string, unknown>;
  meta: TraitMeta;
}

/** Most distinct traits a profile keeps; new names beyond it are ignored. */
export const MAX_TRAITS = 300;

// Never let these reach an object as keys (prototype pollution through deep-merged traits).
const forbidden = new Set(["__proto__", "constructor", "prototype"]);

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * Applies an event's traits at `stamp.t`. Returns the names whose value changed. Ties (same event
 * time) go to the event processed last, i.e. the later one in the batch.
 */
export function applyTraits(state: TraitState, incoming: Record<string, unknown>, stamp: TraitStamp): string[] {
  const changed: string[] = [];
  for (const [name, value] of Object.entries(incoming)) {
    if (forbidden.has(name) || name.length > 200 || value === undefined) continue;
    const previous = state.meta[name];
    if (previous && previous.t > stamp.t) continue;
    if (!previous && Object.keys(state.meta).length >= MAX_TRAITS) continue;
    const had = Object.hasOwn(state.traits, name);
    if (value === null) {
      if (had) {
        delete state.traits[name];
        changed.push(name);
      }
    } else if (!had || !same(state.traits[name], value)) {
      state.traits[name] = value;
      changed.push(name);
    }
    state.meta[name] = stamp;
  }
  return changed;
}

/** Folds a merged-away profile's traits into the survivor: per trait, the newer stamp wins. */
export function mergeTraits(winner: TraitState, loser: TraitState): string[] {
  const changed: string[] = [];
  const names = new Set([...Object.keys(loser.meta), ...Object.keys(loser.traits)]);
  for (const name of names) {
    if (forbidden.has(name)) continue;
    const theirs = loser.meta[name] ?? { t: 0, s: "" };
    const ours = winner.meta[name];
    const oursKnown = ours !== undefined || Object.hasOwn(winner.traits, name);
    if (oursKnown && (ours?.t ?? 0) >= theirs.t) continue;
    const had = Object.hasOwn(winner.traits, name);
    if (Object.hasOwn(loser.traits, name)) {
      if (!had || !same(winner.traits[name], loser.traits[name])) changed.push(name);
      winner.traits[name] = loser.traits[name];
    } else if (had) {
      delete winner.traits[name];
      changed.push(name);
    }
    if (loser.meta[name]) winner.meta[name] = loser.meta[name];
  }
  return changed;
}

/** The display name from traits: `name`, else first + last name. */
export function displayName(traits: Record<string, unknown>): string | null {
  const str = (v: unknown) => (typeof v === "string" ? v.trim() : "");
  const full =
    str(traits.name) ||
    [str(traits.firstName ?? traits.first_name), str(traits.lastName ?? traits.last_name)].filter(Boolean).join(" ");
  return full ? full.slice(0, 200) : null;
}
