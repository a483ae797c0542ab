// The messages the snippet sends, typed against the shared wire format (worker/wire/events.ts,
// Segment's spec as zod schemas). Types only: nothing here reaches the bundle.
import type { BatchPayload, Message } from "../worker/wire/events";

export type { BatchPayload };

/** Free-form properties or traits. */
export type Props = Record<string, unknown>;

/** Where a page view happened: context.page, and the defaults of a page's properties. */
export type PageInfo = {
  path: string;
  url: string;
  title: string;
  referrer: string;
  search: string;
};

/** The `context` of every message. */
export type Context = {
  page: PageInfo;
  campaign?: Record<string, string>;
  locale: string;
  timezone: string;
  screen: { width: number; height: number; density: number };
  library: { name: string; version: string };
  sessionId: string;
  /** Identity verification: the site server's HMAC of the userId, while the page knows it. */
  userHash?: string;
};

/** What the snippet fills in on every message. */
type Common = { messageId: string; anonymousId: string; userId?: string; timestamp: string; context: Context };

/** A message as the snippet sends it: one of the shared wire types, with the common fields set. */
export type Msg = Message & Common & { type: "page" | "track" | "identify" | "alias" | "group" };

/** The fields a method adds to the common ones for a message of type `T`. */
export type Fields<T extends Msg["type"]> = Omit<Extract<Msg, { type: T }>, keyof Common | "type"> & {
  userId?: string;
};
