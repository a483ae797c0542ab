/**
 * Global Privacy Control. `Sec-GPC: 1` is the browser telling every site it visits not to sell or
 * share the person's data — a binding opt-out under the CCPA. Tessera honours it on the server as
 * the snippet does in the browser (where it sends nothing): events from such a request are
 * dropped before anything is stored or queued, and personalization answers without recording an
 * exposure. Only a count of dropped events is kept, so site owners can see how much GPC costs them.
 */

/** The `metrics` total of events dropped for `Sec-GPC: 1` (day 0: all time; per UTC day too). */
export const GPC_DROPPED_METRIC = "gpc_dropped";

/** True when the request carries `Sec-GPC: 1` (the only value the spec defines). */
export function gpcOptOut(headers: Headers): boolean {
  return headers.get("sec-gpc")?.trim() === "1";
}
