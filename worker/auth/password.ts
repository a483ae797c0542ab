/**
 * Password hashing: PBKDF2-SHA256 through WebCrypto with a random 16-byte salt per user.
 * 100,000 iterations is the most workerd allows for PBKDF2 (it rejects higher counts).
 */
import { timingSafeEqual } from "../lib/ids";

const ITERATIONS = 100_000;
const KEY_BITS = 256;

export const PASSWORD_MIN = 10;
export const PASSWORD_MAX = 200;

const toBase64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
const fromBase64 = (text: string) => Uint8Array.from(atob(text), (ch) => ch.charCodeAt(0));

async function derive(password: string, salt: Uint8Array): Promise<string> {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(password), "PBKDF2", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt, iterations: ITERATIONS },
    key,
    KEY_BITS,
  );
  return toBase64(new Uint8Array(bits));
}

/** Hashes a password with a fresh salt; both are base64 for the `users` row. */
export async function hashPassword(password: string): Promise<{ hash: string; salt: string }> {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  return { hash: await derive(password, salt), salt: toBase64(salt) };
}

/** Checks a password against a stored hash in constant time. */
export async function verifyPassword(password: string, hash: string, salt: string): Promise<boolean> {
  return timingSafeEqual(await derive(password, fromBase64(salt)), hash);
}

// Unknown emails still pay for one derivation, so response time does not reveal which emails
// have an account.
const decoySalt = toBase64(new Uint8Array(16));
const decoyHash = toBase64(new Uint8Array(KEY_BITS / 8));

/** Spends the same work as `verifyPassword` and fails. */
export async function verifyDecoy(password: string): Promise<false> {
  await verifyPassword(password, decoyHash, decoySalt);
  return false;
}
