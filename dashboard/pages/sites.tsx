/**
 * Sites: create, allowed origins, rotate the write key, the copy-paste install snippet, and the
 * identity-verification toggle. Editing is for admins; others see keys and snippets.
 */
import { useState } from "hono/jsx/dom";
import { api, type Site } from "../api";
import { splitList } from "../format";
import { CopyButton, can, ErrorBox, field, Loaded, Section, useAction, useAsync } from "../ui";

/** The tag a site pastes into its pages (the snippet reads its write key from `data-key`). */
export function installSnippet(origin: string, writeKey: string): string {
  return `<script async src="${origin}/s.js" data-key="${writeKey}"></script>`;
}

/** The edge-rewriting pair, in the create form and on each site: `idPrefix` keeps ids unique. */
function EdgeFields(props: { idPrefix: string; site?: Site }) {
  return (
    <>
      <label for={`${props.idPrefix}-proxy-host`}>Proxy host</label>
      <input
        id={`${props.idPrefix}-proxy-host`}
        name="proxyHost"
        maxlength={254}
        value={props.site?.proxyHost ?? ""}
        placeholder="www.shop.example"
      />
      <p class="muted">The hostname visitors use, for edge rewriting (no scheme or path); leave empty for none.</p>
      <label for={`${props.idPrefix}-origin-url`}>Origin URL</label>
      <input
        id={`${props.idPrefix}-origin-url`}
        name="originUrl"
        type="url"
        maxlength={2048}
        value={props.site?.originUrl ?? ""}
        placeholder="https://origin.shop.example"
      />
      <p class="muted">Where the site's pages really live (https://…); the proxy host fetches pages from here.</p>
    </>
  );
}

function SiteCard(props: { site: Site; onChange: (s: Site) => void }) {
  const s = props.site;
  const action = useAction();
  const [showSecret, setShowSecret] = useState(false);
  const admin = can("admin");
  const snippet = installSnippet(location.origin, s.writeKey);
  return (
    <Section title={s.name}>
      <ErrorBox error={action.error} />
      <dl class="facts">
        <dt>Site id</dt>
        <dd>
          <code>{s.id}</code>
        </dd>
        <dt>Write key</dt>
        <dd class="row">
          <code>{s.writeKey}</code> <CopyButton value={s.writeKey} />
          {admin ? (
            <button
              type="button"
              class="secondary small"
              disabled={action.busy}
              onClick={() =>
                confirm("Rotate the write key? The current key stops working at once; update your pages first.") &&
                action.run(async () => props.onChange(await api.rotateKey(s.id)), "Write key rotated")
              }
            >
              Rotate
            </button>
          ) : null}
        </dd>
      </dl>
      <label for={`snippet-${s.id}`}>Install snippet (paste before &lt;/head&gt;)</label>
      <div class="row">
        <textarea id={`snippet-${s.id}`} class="code" rows={2} readOnly value={snippet} />
        <CopyButton value={snippet} />
      </div>
      {admin ? (
        <form
          class="form"
          onSubmit={(e: Event) => {
            e.preventDefault();
            const form = e.target as HTMLFormElement;
            action.run(
              async () =>
                props.onChange(await api.updateSite(s.id, { allowedOrigins: splitList(field(form, "origins")) })),
              "Allowed origins saved",
            );
          }}
        >
          <label for={`origins-${s.id}`}>Allowed origins (one per line; * allows any)</label>
          <textarea
            id={`origins-${s.id}`}
            name="origins"
            rows={3}
            maxlength={13000}
            value={s.allowedOrigins.join("\n")}
            placeholder="https://www.example.com"
          />
          <button type="submit" class="secondary" disabled={action.busy}>
            Save origins
          </button>
        </form>
      ) : (
        <p>
          Allowed origins: {s.allowedOrigins.length ? s.allowedOrigins.join(", ") : "none (browser events refused)"}
        </p>
      )}
      {admin ? (
        <form
          class="form"
          onSubmit={(e: Event) => {
            e.preventDefault();
            const form = e.target as HTMLFormElement;
            const host = field(form, "proxyHost");
            const origin = field(form, "originUrl");
            action.run(
              async () =>
                props.onChange(await api.updateSite(s.id, { proxyHost: host || null, originUrl: origin || null })),
              "Edge rewriting saved",
            );
          }}
        >
          <EdgeFields idPrefix={s.id} site={s} />
          <button type="submit" class="secondary" disabled={action.busy}>
            Save edge rewriting
          </button>
        </form>
      ) : (
        <p>
          Proxy host: {s.proxyHost ?? "none"}; origin URL: {s.originUrl ?? "none"}
        </p>
      )}
      <label class="check">
        <input
          type="checkbox"
          checked={s.identityVerification}
          disabled={!admin || action.busy}
          onChange={(e: Event) => {
            const on = (e.target as HTMLInputElement).checked;
            action.run(
              async () => props.onChange(await api.updateSite(s.id, { identityVerification: on })),
              on ? "Identity verification on" : "Identity verification off",
            );
          }}
        />{" "}
        Identity verification: browser identifies must carry <code>userHash</code> = HMAC-SHA256(userId, secret)
      </label>
      {admin ? (
        <p class="row">
          Verification secret:{" "}
          {showSecret ? (
            <>
              <code>{s.verificationSecret}</code> <CopyButton value={s.verificationSecret} />
            </>
          ) : (
            <button type="button" class="secondary small" onClick={() => setShowSecret(true)}>
              Reveal
            </button>
          )}
        </p>
      ) : null}
    </Section>
  );
}

export function SitesPage() {
  const sites = useAsync(() => api.sites(), []);
  const action = useAction();
  const replace = (site: Site) => sites.set((sites.data ?? []).map((x) => (x.id === site.id ? site : x)));
  return (
    <>
      <h1>Sites</h1>
      <Loaded state={sites}>
        {(items) => (
          <>
            {items.length === 0 ? <p class="muted">No sites yet.</p> : null}
            {items.map((s) => (
              <SiteCard key={s.id} site={s} onChange={replace} />
            ))}
          </>
        )}
      </Loaded>
      {can("admin") ? (
        <form
          class="card form"
          onSubmit={(e: Event) => {
            e.preventDefault();
            const form = e.target as HTMLFormElement;
            action.run(async () => {
              const proxyHost = field(form, "proxyHost");
              const originUrl = field(form, "originUrl");
              const site = await api.createSite({
                name: field(form, "name"),
                allowedOrigins: splitList(field(form, "origins")),
                ...(proxyHost ? { proxyHost } : {}),
                ...(originUrl ? { originUrl } : {}),
              });
              form.reset();
              sites.set([...(sites.data ?? []), site]);
            }, "Site created");
          }}
        >
          <h2>New site</h2>
          <ErrorBox error={action.error} />
          <label for="site-name">Name</label>
          <input id="site-name" name="name" required maxlength={200} placeholder="Web shop" />
          <label for="site-origins">Allowed origins (one per line)</label>
          <textarea id="site-origins" name="origins" rows={2} maxlength={13000} placeholder="https://www.example.com" />
          <EdgeFields idPrefix="site" />
          <button type="submit" disabled={action.busy}>
            Create site
          </button>
        </form>
      ) : null}
    </>
  );
}
