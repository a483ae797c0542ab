/**
 * The load campaign's world, generated from a seed: people with devices, what each device sends
 * and when, the requests a fleet of clients makes of it (with network faults: retries, re-batched
 * retries, duplicates within a batch), and the oracle — what the product must end up holding,
 * computed here from the generated events alone, never from the product's code.
 */
import type { IdentifyMessage, Message, PageMessage, TrackMessage } from "../../worker/wire/events";

export const DAY = 86_400_000;

/** mulberry32: small, fast, and the same sequence for the same seed on every platform. */
export function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (min: number, max: number) => min + Math.floor(next() * (max - min + 1));
  return {
    next,
    int,
    chance: (p: number) => next() < p,
    pick: <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)],
    shuffle<T>(list: T[]): T[] {
      for (let i = list.length - 1; i > 0; i--) {
        const j = int(0, i);
        [list[i], list[j]] = [list[j], list[i]];
      }
      return list;
    },
  };
}
export type Rng = ReturnType<typeof prng>;

export interface Person {
  index: number;
  /** The ids the person's events will carry; null when they never use that kind. */
  userId: string | null;
  email: string | null;
  devices: string[];
}

/** One generated message and whose it is. `valid: false` messages must be rejected, not stored. */
export interface Sent {
  person: number;
  message: Message;
  at: number;
  valid: boolean;
}

export type Route = "/v1/batch" | "/v1/track" | "/v1/identify" | "/v1/page";

export interface PlannedRequest {
  route: Route;
  messages: Sent[];
  /** A client retry of messages already sent (same messageIds). */
  retry: boolean;
}

/** Requests a client sends at the same moment (a retry racing its original, two tabs identifying). */
export type WorkItem = PlannedRequest[];

export interface World {
  seed: number;
  now: number;
  people: Person[];
  /** Every distinct message generated (valid and invalid), once. */
  messages: Sent[];
  work: WorkItem[];
  /** Requests whose messages were sent again later or concurrently. */
  retried: number;
}

const PLANS = ["free", "pro", "enterprise"] as const;
const PATHS = ["/", "/pricing", "/pricing/enterprise", "/docs", "/blog/launch", "/product/1", "/product/2"];

/**
 * Event times: "recent" (the last 5 days) or "old" (20 to 60 days ago), nothing in between, so
 * the segments' 7- and 14-day windows never change their answer during the run (not even across
 * UTC midnight, which moves a day-granular window's first day).
 */
function eventTime(rng: Rng, now: number): number {
  return rng.chance(0.6) ? now - rng.int(60_000, 5 * DAY) : now - rng.int(20 * DAY, 60 * DAY);
}

interface DeviceEvent {
  kind: "page" | "product" | "cart" | "order" | "identify";
  at: number;
}

export interface WorldOptions {
  seed: number;
  now: number;
  /** Generate people until at least this many distinct valid messages exist. */
  minEvents: number;
}

/** Generates people, their messages and the requests that carry them. */
export function generateWorld({ seed, now, minEvents }: WorldOptions): World {
  const rng = prng(seed);
  const taken = new Set<number>();
  // Distinct times per message: "latest by event time" then has exactly one answer.
  const uniqueTime = (t: number) => {
    let at = t;
    while (taken.has(at)) at--;
    taken.add(at);
    return at;
  };
  const people: Person[] = [];
  const messages: Sent[] = [];
  /** Per device, its flushes in order (what its tracker sends, request by request). */
  const deviceFlushes: Sent[][][] = [];
  /** Server-side events (userId only), batched later across people. */
  const serverEvents: Sent[] = [];
  /** Per person with two identified devices, the flushes holding each device's first identify. */
  const identifyPairs: Sent[][][] = [];
  let seq = 0;
  let valid = 0;

  while (valid < minEvents) {
    const index = people.length;
    const kind = rng.chance(0.2) ? "anonymous" : rng.pick(["user", "email", "both", "both"] as const);
    const deviceCount = kind === "anonymous" ? 1 : rng.pick([1, 1, 2, 2, 3]);
    const tag = `${seed.toString(36)}-${index}`;
    const person: Person = {
      index,
      userId: kind === "user" || kind === "both" ? `u-${tag}` : null,
      email: kind === "email" || kind === "both" ? `p${tag}@example.test` : null,
      devices: Array.from({ length: deviceCount }, (_, d) => `d-${tag}-${d}`),
    };
    people.push(person);
    // Which ids each device's identify carries; together they must connect all the person's ids.
    const uses: { user: boolean; email: boolean }[] = person.devices.map(() => ({
      user: kind === "user" || (kind === "both" && rng.chance(0.6)),
      email: kind === "email" || (kind === "both" && rng.chance(0.6)),
    }));
    if (kind === "both") {
      const bridge = rng.int(0, deviceCount - 1);
      uses[bridge] = { user: true, email: true };
      for (const u of uses) if (!u.user && !u.email) u.email = true;
    }

    const firstIdentifies: Sent[][] = [];
    person.devices.forEach((device, d) => {
      const count = rng.int(2, 7);
      const timeline: DeviceEvent[] = Array.from({ length: count }, () => ({
        kind: rng.pick(["page", "page", "page", "product", "product", "cart", "order"] as const),
        at: uniqueTime(eventTime(rng, now)),
      }));
      if (kind !== "anonymous") {
        timeline.push({ kind: "identify", at: uniqueTime(eventTime(rng, now)) });
        // Some people change their traits later (a second identify on the same device).
        if (rng.chance(0.3)) timeline.push({ kind: "identify", at: uniqueTime(eventTime(rng, now)) });
      }
      timeline.sort((a, b) => a.at - b.at);
      let identified = false;
      const sent: Sent[] = timeline.map((e) => {
        const base = {
          messageId: `m-${tag}-${seq++}`,
          anonymousId: device,
          timestamp: new Date(e.at).toISOString(),
        };
        // After the first identify, analytics.js keeps sending the user id it was given.
        const userId = identified && uses[d].user ? { userId: person.userId as string } : {};
        let message: Message;
        if (e.kind === "identify") {
          identified = true;
          const traits: Record<string, unknown> = { plan: rng.pick(PLANS) };
          if (rng.chance(0.5)) traits.name = `Person ${index} v${rng.int(1, 9)}`;
          if (rng.chance(0.3)) traits.seats = rng.int(1, 50);
          // Email case varies by device; identities are normalised, traits keep what was sent.
          if (uses[d].email) traits.email = rng.chance(0.3) ? (person.email as string).toUpperCase() : person.email;
          message = {
            type: "identify",
            ...base,
            ...(uses[d].user ? { userId: person.userId as string } : {}),
            traits,
          } satisfies IdentifyMessage;
        } else if (e.kind === "page") {
          const path = rng.pick(PATHS);
          message = {
            type: "page",
            ...base,
            ...userId,
            properties: { path, url: `https://shop.example${path}`, title: `Page ${path}` },
          } satisfies PageMessage;
        } else {
          const event = e.kind === "order" ? "Order Completed" : e.kind === "cart" ? "Added to Cart" : "Product Viewed";
          const properties: Record<string, unknown> =
            e.kind === "order"
              ? { total: rng.int(10, 200), orderId: `o-${tag}-${seq}` }
              : { sku: `sku-${rng.int(1, 40)}`, price: rng.int(5, 90) };
          message = { type: "track", ...base, ...userId, event, properties } satisfies TrackMessage;
        }
        return { person: index, message, at: e.at, valid: true };
      });
      messages.push(...sent);
      valid += sent.length;

      const flushes: Sent[][] = [];
      for (let i = 0; i < sent.length; ) {
        const size = rng.pick([1, 2, 4, 8, 12, 16]);
        flushes.push(sent.slice(i, i + size));
        i += size;
      }
      deviceFlushes.push(flushes);
      const first = flushes.find((f) => f.some((s) => s.message.type === "identify"));
      if (first) firstIdentifies.push(first);
    });
    if (firstIdentifies.length >= 2 && rng.chance(0.5)) identifyPairs.push(firstIdentifies.slice(0, 2));

    // The shop's backend reports some orders with the user id alone (no device).
    if (person.userId && rng.chance(0.3)) {
      for (let i = rng.int(1, 3); i > 0; i--) {
        const at = uniqueTime(eventTime(rng, now));
        const message: TrackMessage = {
          type: "track",
          messageId: `m-${tag}-${seq++}`,
          userId: person.userId,
          event: "Order Completed",
          properties: { total: rng.int(10, 200), orderId: `o-${tag}-${seq}`, source: "backend" },
          timestamp: new Date(at).toISOString(),
        };
        const s: Sent = { person: index, message, at, valid: true };
        serverEvents.push(s);
        messages.push(s);
        valid++;
      }
    }
  }

  return { seed, now, people, messages, ...planRequests(rng, deviceFlushes, serverEvents, identifyPairs, messages) };
}

/** A message a correct server must refuse (and record in rejected_events). */
function invalidMessage(rng: Rng, anonymousId: string, messageId: string, person: number): Sent {
  const message: Message = rng.chance(0.5)
    ? // An empty event name fails the track schema.
      { type: "track", event: "", anonymousId, messageId, timestamp: new Date().toISOString() }
    : // Before 2000: a broken client clock, refused by the event-time rule.
      { type: "page", anonymousId, messageId, timestamp: "1999-12-31T23:00:00.000Z", properties: { path: "/" } };
  return { person, message, at: 0, valid: false };
}

const singleRoute: Record<string, Route> = { track: "/v1/track", identify: "/v1/identify", page: "/v1/page" };

function planRequests(
  rng: Rng,
  deviceFlushes: Sent[][][],
  serverEvents: Sent[],
  identifyPairs: Sent[][][],
  messages: Sent[],
): { work: WorkItem[]; retried: number } {
  const asRequest = (flush: Sent[]): PlannedRequest =>
    flush.length === 1 && rng.chance(0.4)
      ? { route: singleRoute[flush[0].message.type as string], messages: flush, retry: false }
      : { route: "/v1/batch", messages: flush, retry: false };

  // Devices send their flushes in order, interleaved with every other device's at random.
  const queues = deviceFlushes.map((flushes) => [...flushes]);
  const live = queues.map((_, i) => i);
  const order: Sent[][] = [];
  while (live.length > 0) {
    const at = rng.int(0, live.length - 1);
    const flush = queues[live[at]].shift() as Sent[];
    order.push(flush);
    if (queues[live[at]].length === 0) live.splice(at, 1);
  }
  // An offline device flushes late: 10% of flushes arrive after newer events of the same person.
  const late = new Set(order.filter(() => rng.chance(0.1)));
  const onTime = order.filter((f) => !late.has(f));
  for (const flush of late) onTime.splice(rng.int(0, onTime.length), 0, flush);

  const paired = new Map<Sent[], Sent[]>();
  for (const [a, b] of identifyPairs) paired.set(a, b);
  const partners = new Set(paired.values());

  const work: WorkItem[] = [];
  for (const flush of onTime) {
    if (partners.has(flush)) continue;
    const partner = paired.get(flush);
    // Two devices of one person identifying at the same moment, in separate requests.
    work.push(partner ? [asRequest(flush), asRequest(partner)] : [asRequest(flush)]);
  }
  // Backend batches: 20–50 events of many people each, spread through the traffic.
  rng.shuffle(serverEvents);
  for (let i = 0; i < serverEvents.length; ) {
    const size = rng.int(20, 50);
    work.splice(rng.int(0, work.length), 0, [
      { route: "/v1/batch", messages: serverEvents.slice(i, i + size), retry: false },
    ]);
    i += size;
  }

  // Network faults, on ~14% of requests: the client never saw the answer and sends again.
  let retried = 0;
  const originals = work.flatMap((item) => item.map((request) => ({ request, item })));
  for (const { request, item } of originals) {
    if (!rng.chance(0.14)) continue;
    retried++;
    const fault = rng.next();
    const position = work.indexOf(item);
    if (fault < 0.35) {
      // Concurrently with the original (a timeout fired while the first request was still in flight).
      item.push({ ...request, retry: true });
    } else if (fault < 0.7 || request.messages.length < 2) {
      // The same body, later.
      work.splice(rng.int(position + 1, work.length), 0, [{ ...request, retry: true }]);
    } else {
      // Re-batched: the client's queue was rebuilt, so the same messages travel in a different split and order.
      const shuffled = rng.shuffle([...request.messages]);
      const cut = rng.int(1, shuffled.length - 1);
      for (const part of [shuffled.slice(0, cut), shuffled.slice(cut)]) {
        work.splice(rng.int(position + 1, work.length), 0, [{ route: "/v1/batch", messages: part, retry: true }]);
      }
    }
  }

  // A buggy client queue: 3% of batches carry one of their messages twice.
  const batches = work.flat().filter((r) => r.route === "/v1/batch");
  for (const request of batches) {
    if (rng.chance(0.03)) request.messages = [...request.messages, rng.pick(request.messages)];
  }
  // 1% of first-time device batches also carry a message the server must refuse. Never in a
  // request that is sent twice: the rejected store keeps each refusal (it is not deduplicated).
  const resent = new Set(
    work
      .flat()
      .filter((r) => r.retry)
      .flatMap((r) => r.messages),
  );
  for (const request of batches) {
    if (request.retry || request.messages.some((m) => resent.has(m)) || !rng.chance(0.01)) continue;
    const owner = request.messages[0];
    const device = owner.message.anonymousId;
    if (typeof device !== "string") continue;
    const bad = invalidMessage(rng, device, `bad-${owner.message.messageId}`, owner.person);
    request.messages = [...request.messages, bad];
    messages.push(bad);
  }
  return { work, retried };
}

/** The body a client sends for a request. */
export function requestBody(request: PlannedRequest): string {
  if (request.route === "/v1/batch") return JSON.stringify({ batch: request.messages.map((s) => s.message) });
  const { type: _type, ...single } = request.messages[0].message;
  return JSON.stringify(single);
}

// ---------------------------------------------------------------------------------------------
// The oracle

export interface PersonFacts {
  /** Identity-graph keys (`type:value`, values normalised as documented) the person's events carry. */
  keys: Set<string>;
  traits: Record<string, unknown>;
  pageViews: number;
  orders: number;
  revenue: number;
  /** Order Completed with total ≥ 50 per UTC day. */
  bigOrdersByDay: Map<number, number>;
  /** Latest page view on exactly /pricing; any page view under /pricing. */
  lastPricingPage: number | null;
  sawPricingSection: boolean;
  messageIds: Set<string>;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** What each person's valid events add up to, by the documented rules. */
export function personFacts(world: World): Map<number, PersonFacts> {
  const facts = new Map<number, PersonFacts>();
  const stamps = new Map<number, Map<string, number>>();
  for (const person of world.people) {
    facts.set(person.index, {
      keys: new Set(),
      traits: {},
      pageViews: 0,
      orders: 0,
      revenue: 0,
      bigOrdersByDay: new Map(),
      lastPricingPage: null,
      sawPricingSection: false,
      messageIds: new Set(),
    });
    stamps.set(person.index, new Map());
  }
  for (const { person, message: m, at, valid } of world.messages) {
    if (!valid) continue;
    const f = facts.get(person) as PersonFacts;
    f.messageIds.add(m.messageId as string);
    if (typeof m.anonymousId === "string") f.keys.add(`anonymous_id:${m.anonymousId}`);
    if (typeof m.userId === "string") f.keys.add(`user_id:${m.userId}`);
    if (m.type === "identify" && isRecord(m.traits)) {
      if (typeof m.traits.email === "string") f.keys.add(`email:${m.traits.email.toLowerCase()}`);
      const seen = stamps.get(person) as Map<string, number>;
      for (const [name, value] of Object.entries(m.traits)) {
        if ((seen.get(name) ?? Number.NEGATIVE_INFINITY) < at) {
          seen.set(name, at);
          f.traits[name] = value;
        }
      }
    }
    if (m.type === "page") {
      f.pageViews++;
      const path = isRecord(m.properties) ? m.properties.path : undefined;
      if (path === "/pricing") f.lastPricingPage = Math.max(f.lastPricingPage ?? at, at);
      if (typeof path === "string" && path.startsWith("/pricing")) f.sawPricingSection = true;
    }
    if (m.type === "track" && m.event === "Order Completed" && isRecord(m.properties)) {
      const total = m.properties.total as number;
      f.orders++;
      f.revenue += total;
      if (total >= 50) {
        const day = Math.floor(at / DAY);
        f.bigOrdersByDay.set(day, (f.bigOrdersByDay.get(day) ?? 0) + 1);
      }
    }
  }
  return facts;
}

/** The campaign's segments: a trait rule, a counted and windowed event rule, a page rule, a combination. */
export const SEGMENTS = [
  { key: "load-pro", name: "Pro plan", rule: { trait: "plan", op: "eq", value: "pro" } },
  {
    key: "load-buyers",
    name: "Two big orders in 14 days",
    rule: {
      event: "Order Completed",
      where: [{ property: "total", op: "gte", value: 50 }],
      count: { op: "gte", value: 2 },
      within: "14d",
    },
  },
  {
    key: "load-pricing",
    name: "Saw pricing",
    rule: { page: true, where: [{ property: "path", op: "starts_with", value: "/pricing" }] },
  },
  {
    key: "load-hot",
    name: "Pro and warm",
    rule: {
      all: [
        { segment: "load-pro" },
        {
          any: [
            { page: true, where: [{ property: "path", op: "eq", value: "/pricing" }], within: "7d" },
            { computed: "orders", op: "gte", value: 3 },
          ],
        },
      ],
    },
  },
] as const;

/**
 * Which segments a person belongs to at `now`, by the rule semantics documented in
 * worker/segments/rule.ts: counts over a window add up the UTC days it overlaps; "at least one
 * within" is exact.
 */
export function oracleSegments(f: PersonFacts, now: number): Set<string> {
  const out = new Set<string>();
  const pro = f.traits.plan === "pro";
  if (pro) out.add("load-pro");
  const firstDay = Math.floor((now - 14 * DAY) / DAY);
  let big = 0;
  for (const [day, n] of f.bigOrdersByDay) if (day >= firstDay) big += n;
  if (big >= 2) out.add("load-buyers");
  if (f.sawPricingSection) out.add("load-pricing");
  const recentPricing = f.lastPricingPage !== null && f.lastPricingPage >= now - 7 * DAY;
  if (pro && (recentPricing || f.orders >= 3)) out.add("load-hot");
  return out;
}
