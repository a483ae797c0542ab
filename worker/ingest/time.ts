/**
 * Event time: strict ISO-8601 parsing and Segment's clock-skew correction.
 */

/** Events further ahead of the server clock than this are clamped (Mixpanel rejects > 1 h ahead). */
export const FUTURE_TOLERANCE_MS = 60 * 60 * 1000;
/** Anything before this is a broken clock or a unit mistake, not an event. */
export const EARLIEST_EVENT_MS = Date.UTC(2000, 0, 1);

// `Date.parse` also accepts "March 7 2020" and reads offset-less times in the isolate's zone, so
// the format is checked here: date, optional time with up to nanoseconds, optional offset (UTC if absent).
const ISO_DATE =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(?:([Zz])|([+-])(\d{2}):?(\d{2}))?)?$/;

// What `Date.prototype.toISOString()` prints, and so what nearly every client sends.
const CANONICAL = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function digitsAt(text: string, from: number, count: number): number {
  let value = 0;
  for (let i = from; i < from + count; i++) value = value * 10 + text.charCodeAt(i) - 48;
  return value;
}

/**
 * The canonical form read from its fixed positions (no capture groups, no Date allocation);
 * null hands anything unusual (years before 100, which Date.UTC reads as 19xx; leap seconds;
 * invalid fields) to the general parser, which decides.
 */
function parseCanonical(text: string): number | null {
  const year = digitsAt(text, 0, 4);
  const month = digitsAt(text, 5, 2);
  const day = digitsAt(text, 8, 2);
  const hour = digitsAt(text, 11, 2);
  const minute = digitsAt(text, 14, 2);
  const second = digitsAt(text, 17, 2);
  if (year < 100 || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return null;
  const leap = month === 2 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (day > DAYS_IN_MONTH[month - 1] + (leap ? 1 : 0)) return null;
  return Date.UTC(year, month - 1, day, hour, minute, second, digitsAt(text, 20, 3));
}

/** Epoch ms of an ISO-8601 date-time, or null when it is not one. */
export function parseIsoDate(text: string): number | null {
  if (text.length === 24 && CANONICAL.test(text)) {
    const fast = parseCanonical(text);
    if (fast !== null) return fast;
  }
  const m = ISO_DATE.exec(text.trim());
  if (!m) return null;
  const [, y, mo, d, h = "0", mi = "0", s = "0", frac = "", , sign, oh, om] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  // A leap second (:60) is read as the last millisecond of the minute.
  const second = Math.min(Number(s), 59);
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || Number(s) > 60) return null;
  const ms = frac === "" ? 0 : Math.floor(Number(`0.${frac}`) * 1000);
  let time = Date.UTC(year, month - 1, day, hour, minute, second, Number(s) === 60 ? 999 : ms);
  // Date.UTC rolls Feb 30 over to March: reject instead.
  if (new Date(time).getUTCDate() !== day) return null;
  if (sign) {
    const offsetMin = Number(oh) * 60 + Number(om);
    if (offsetMin > 14 * 60) return null;
    time -= (sign === "+" ? 1 : -1) * offsetMin * 60_000;
  }
  return time;
}

export type EventTime = { ok: true; timestamp: number; futureClamped: boolean } | { ok: false; reason: string };

/**
 * The event time by the server's clock. With both client times, Segment's rule
 * `receivedAt − (sentAt − timestamp)` removes the client's clock error; with only `timestamp` it is
 * taken as is; without it, the event happened when it arrived. Results more than an hour ahead are
 * clamped to `receivedAt`; results before 2000 are refused.
 */
export function eventTime(input: { timestamp: number | null; sentAt: number | null; receivedAt: number }): EventTime {
  const { timestamp, sentAt, receivedAt } = input;
  let time = timestamp === null ? receivedAt : sentAt === null ? timestamp : receivedAt - (sentAt - timestamp);
  let futureClamped = false;
  if (time > receivedAt + FUTURE_TOLERANCE_MS) {
    time = receivedAt;
    futureClamped = true;
  }
  if (time < EARLIEST_EVENT_MS) return { ok: false, reason: "timestamp is before 2000-01-01" };
  return { ok: true, timestamp: time, futureClamped };
}
