// Personalization, served as /s/slots.js and loaded by /s.js only on pages that have
// [data-tessera-slot] elements (or the anti-flicker class): it fills the slots from
// /v1/personalize, then lifts the anti-flicker class. Kept out of /s.js for its byte budget.

type Slot = { content?: unknown; variant?: string };

/** What /s.js puts on this script element: [writeKey, anonymousId, userId, userHash], or false
 * when tracking is off (Global Privacy Control, no consent): then no request, only the defaults. */
type Who = [key: string, anonymousId: string, userId: string, userHash?: string] | false;

const L = "tessera-loading";

/** Asks `${api}/v1/personalize` for the page's slots as visitor `who` and fills them. The
 * `tessera-loading` class, which the site's CSS may use to hide slots until then, is removed once
 * the answer is in or after 1 s, whichever comes first; a later answer is ignored so that content
 * never changes under the visitor's eyes. */
export const personalize = (api: string, who: Who | undefined) => {
  let els = [...document.querySelectorAll<HTMLElement>("[data-tessera-slot]")];
  const show = () => {
    // Also empties the list a late answer would fill.
    els = [];
    for (const e of document.querySelectorAll(`.${L}`)) e.classList.remove(L);
  };
  if (who && els[0]) {
    setTimeout(show, 1e3);
    const query = new URLSearchParams({
      writeKey: who[0],
      anonymousId: who[1],
      // The server reads empty values as absent.
      userId: who[2],
      userHash: who[3] || "",
      // Slot names need no encoding: the server accepts only [a-z0-9_-].
      slots: els.map((e) => e.dataset.tesseraSlot).join(),
    });
    fetch(`${api}/v1/personalize?${query}`)
      .then((r) => r.json())
      .then((d: { slots: Record<string, Slot> }) => {
        for (const e of els) {
          // A name like "constructor" finds Object's own property, which has no content.
          const s = d.slots[e.dataset.tesseraSlot as string];
          const c = s?.content;
          // Slot content is HTML written by the site's own marketers in the Tessera dashboard, never
          // by visitors, so it is trusted like the rest of the site's markup. Structured content is
          // handed to the site's code instead, as the detail ({content, variant}) of a bubbling
          // `tessera:slot` event on the element.
          typeof c === "string"
            ? (e.innerHTML = c)
            : c && e.dispatchEvent(new CustomEvent("tessera:slot", { detail: s, bubbles: true }));
        }
      })
      .then(show, show);
  } else show();
};

try {
  const s = document.currentScript as HTMLScriptElement & { who?: Who };
  personalize(new URL(s.src).origin, s.who);
} catch {}
