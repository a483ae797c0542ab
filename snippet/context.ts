// Segment's `context` and page properties, read from the browser when a message is made.
import { campaign } from "./rules";
import type { Context, PageInfo } from "./types";

/** The snippet's version, sent as context.library.version. */
export const version = "0.1.0";

/** The current page, as Segment's page properties and context.page. */
export const pageInfo = (): PageInfo => ({
  path: location.pathname,
  url: location.href,
  title: document.title,
  referrer: document.referrer,
  search: location.search,
});

/** The context of a message made now, in session `sessionId`, vouched for by `userHash`. */
export const context = (sessionId: string, userHash?: string): Context => ({
  page: pageInfo(),
  campaign: campaign(location.search),
  locale: navigator.language,
  timezone: Intl.DateTimeFormat().resolvedOptions().timeZone,
  screen: { width: screen.width, height: screen.height, density: devicePixelRatio },
  library: { name: "tessera.js", version },
  sessionId,
  userHash,
});
