/**
 * The live event debugger: polls the latest processed events every 2 s (filtered by site and
 * type) and lists them newest first, each expandable to its JSON as text.
 */
import { useEffect, useState } from "hono/jsx/dom";
import { api, type TrackedEvent } from "../api";
import { mergeLatest } from "../format";
import type { Location } from "../router";
import { setQuery } from "../router";
import { ErrorBox, PageHead } from "../ui";
import { EventRow } from "./contact";

const POLL_MS = 2000;
const types = ["track", "page", "identify", "screen", "group", "alias"];

export function DebuggerPage(props: { loc: Location }) {
  const site = props.loc.query.get("site") ?? "";
  const type = props.loc.query.get("type") ?? "";
  const [events, setEvents] = useState<TrackedEvent[]>([]);
  const [paused, setPaused] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [skipped, setSkipped] = useState(false);
  const [sites, setSites] = useState<{ id: string; name: string }[]>([]);

  useEffect(() => {
    api.sites().then(setSites, () => setSites([]));
  }, []);

  useEffect(() => {
    setEvents([]);
    if (paused) return;
    let cursor: string | null | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let live = true;
    const poll = async () => {
      try {
        const page = await api.latestEvents({ after: cursor, site, type });
        if (!live) return;
        cursor = page.cursor;
        if (page.items.length) setEvents((current) => mergeLatest(current, page.items));
        setSkipped(!!page.truncated);
        setError(null);
      } catch (e) {
        if (live) setError(e);
      }
      // Polling pauses while the tab is hidden and resumes on the next tick after it is shown.
      if (live) timer = setTimeout(poll, document.hidden ? POLL_MS * 5 : POLL_MS);
    };
    poll();
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [site, type, paused]);

  return (
    <>
      <PageHead
        title="Live events"
        action={
          <div class="actions">
            <span class={paused ? "badge" : "badge live"}>{paused ? "paused" : "live"}</span>
            <button type="button" class="secondary" onClick={() => setPaused(!paused)}>
              {paused ? "Resume" : "Pause"}
            </button>
          </div>
        }
      />
      <div class="filters">
        <select
          aria-label="Site"
          value={site}
          onChange={(e: Event) => setQuery({ site: (e.target as HTMLSelectElement).value }, true)}
        >
          <option value="">All sites</option>
          {sites.map((s) => (
            <option value={s.id}>{s.name}</option>
          ))}
        </select>
        <select
          aria-label="Type"
          value={type}
          onChange={(e: Event) => setQuery({ type: (e.target as HTMLSelectElement).value }, true)}
        >
          <option value="">All types</option>
          {types.map((t) => (
            <option value={t}>{t}</option>
          ))}
        </select>
      </div>
      <ErrorBox error={error} />
      {skipped ? <p class="muted">More events arrived than one poll shows; some older ones are not listed.</p> : null}
      {events.length === 0 ? (
        <p class="muted">Waiting for events… they appear here within seconds of being sent.</p>
      ) : (
        <ul class="events card">
          {events.map((e) => (
            // Keyed, so an expanded event stays expanded when newer ones arrive above it.
            <EventRow key={`${e.siteId ?? ""}/${e.messageId}`} event={e} showProfile />
          ))}
        </ul>
      )}
    </>
  );
}
