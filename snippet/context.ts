// The messages themselves: Segment's common fields and `context`, read from the browser when a
// message is made.
import { aid, hash, sid, uid, uuid } from "./identity";
import { campaign } from "./rules";
import type { Context, Fields, Msg, PageInfo } from "./types";

/** Now, as an ISO 8601 timestamp. */
export const now = () => new Date().toISOString();

/** The current page, as Segment's page properties and context.page. */
export const pageInfo = (): PageInfo => ({
  path: location.pathname,
  url: location.href,
  title: document.title,
  referrer: document.referrer,
  search: location.search,
});

/** A message of `type` made now, by the current visitor, with its own `fields`. */
export const message = <T extends Msg["type"]>(type: T, fields: Fields<T>) =>
  // `type` and `fields` make an Extract<Msg, {type: T}>, which TypeScript cannot see through the
  // generic; the call sites are checked against the wire types by Fields<T>.
  Object.assign(
    {
      type,
      messageId: uuid(),
      anonymousId: aid,
      userId: uid || undefined,
      timestamp: now(),
      context: {
        page: pageInfo(),
        campaign: campaign(location.search),
        locale: navigator.language,
        timezone: Intl.DateTimeFormat().resolvedOptions().timeZone,
        screen: { width: screen.width, height: screen.height, density: devicePixelRatio },
        library: { name: "tessera.js", version: "0.2.0" },
        sessionId: sid(),
        // Identity verification: the site server's HMAC of the userId, while the page knows it.
        userHash: hash,
      } satisfies Context,
    },
    fields,
  ) as Msg;
