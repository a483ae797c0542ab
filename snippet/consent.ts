// Consent: Global Privacy Control and the visitor's recorded choice.
import { allowed } from "./rules";
import { get, set } from "./storage";

const C = "tsr_c";

/** Whether the browser sends Global Privacy Control; if so the snippet stores and sends nothing. */
export const gpc = () => (navigator as Navigator & { globalPrivacyControl?: boolean }).globalPrivacyControl === true;

/** Whether tracking may run now; `required`: the site asks for opt-in (data-consent="required"). */
export const permitted = (required: boolean) => allowed(gpc(), get(C), required);

/** Records the visitor's choice. Written only once a choice is made: before that there is nothing
 * to remember, and an opt-in site must store nothing. */
export const choose = (yes: boolean) => set(C, yes ? "1" : "0");
