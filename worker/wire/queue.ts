/**
 * The contract between the ingest routes and the pipeline consumer: what travels on the
 * `EVENTS` queue. Ingest validates and normalises Segment messages into `NormalizedEvent`s;
 * the consumer trusts this shape (it was produced by our own code) but still guards each event.
 */

export type EventType = "track" | "identify" | "page" | "screen" | "group" | "alias";

/** A validated, normalised Segment message. Times are epoch milliseconds. */
export interface NormalizedEvent {
  type: EventType;
  /** Client-supplied (or generated) id; dedupe key together with the site. */
  messageId: string;
  /** Already free of illegal values (`null`, `undefined`, `0`, `[object Object]`, empty, …). */
  anonymousId: string | null;
  userId: string | null;
  /** alias: the id being aliased (Segment's `previousId`). */
  previousId: string | null;
  /** group: the company / account id. */
  groupId: string | null;
  /** track: the event name. */
  event: string | null;
  /** page/screen: the page name. */
  name: string | null;
  properties: Record<string, unknown>;
  /** identify/group traits (identify also merges `context.traits`). */
  traits: Record<string, unknown>;
  /** Segment context plus server enrichment under `context.geo`, `context.device`, `context.bot`. */
  context: Record<string, unknown>;
  /** Skew-corrected event time (`receivedAt − (sentAt − timestamp)`); more than 1 h ahead is clamped to receivedAt. */
  timestamp: number;
  /** Server clock when the request was accepted. */
  receivedAt: number;
  /** e.g. `future_clamped`, `bot`. */
  flags: string[];
  /**
   * Identity verification: true when the message carried a valid `userHash` (HMAC-SHA256 of
   * userId with the site's secret) or came from a server-side source with the site's secret.
   */
  verified: boolean;
}

/** One queue message: several events of one site (≤ 128 KB serialised). */
export interface QueuedBatch {
  v: 1;
  siteId: string;
  events: NormalizedEvent[];
}
