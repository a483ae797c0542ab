// Personalization: fills the page's [data-tessera-slot] elements, then lifts the anti-flicker class.

type Slots = Record<string, { content: unknown; variant?: string }>;

/** Asks the personalize endpoint `url` (with its query; "" skips the request) for the page's slots
 * and fills them. The `tessera-loading` class, which the site's own CSS may use to hide slots until
 * then, is removed once the answer is in or after 1 s, whichever comes first; a later answer is
 * ignored so that content never changes under the visitor's eyes. */
export const personalize = (url: string) => {
  const els = [...document.querySelectorAll<HTMLElement>("[data-tessera-slot]")];
  const show = () => {
    // Also marks any answer still to come as too late.
    url = "";
    for (const e of [document.documentElement, ...els]) e.classList.remove("tessera-loading");
  };
  setTimeout(show, url && els.length ? 1e3 : 0);
  if (url && els.length)
    fetch(`${url}&slots=${encodeURIComponent(els.map((e) => e.dataset.tesseraSlot).join())}`, { credentials: "omit" })
      .then((r) => r.json())
      .then((d: { slots: Slots }) => {
        for (const e of els) {
          const n = e.dataset.tesseraSlot as string;
          // A slot without content, or a name like "constructor" that finds Object's, keeps its HTML.
          const s = url && d.slots[n];
          // Slot content is HTML written by the site's own marketers in the Tessera dashboard, never
          // by visitors, so it is trusted like the rest of the site's markup. Structured content is
          // handed to the site's code instead.
          if (s && s.content != null)
            typeof s.content === "string"
              ? (e.innerHTML = s.content)
              : e.dispatchEvent(
                  new CustomEvent("tessera:slot", {
                    detail: { slot: n, content: s.content, variant: s.variant },
                    bubbles: true,
                  }),
                );
        }
      })
      .catch(() => {})
      .then(show);
};
