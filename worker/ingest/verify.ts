/**
 * Identity verification (Intercom-style): the site's server computes
 * `hex(HMAC-SHA256(verificationSecret, userId))` and the page sends it as `context.userHash`. A
 * public write key lets anyone claim any user id; a valid hash proves the site's server vouched
 * for it.
 */

const HEX_SHA256 = /^[0-9a-fA-F]{64}$/;

function hexToBytes(hex: string): Uint8Array {
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return bytes;
}

/**
 * A checker for one site's secret; the key is imported once, on first use, and reused for every
 * message of the request.
 */
export function userHashVerifier(secret: string) {
  let key: Promise<CryptoKey> | undefined;
  const encoder = new TextEncoder();
  return async (userId: string, userHash: string): Promise<boolean> => {
    if (!HEX_SHA256.test(userHash)) return false;
    key ??= crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
      "verify",
    ]);
    // subtle.verify compares in constant time, so the hash cannot be guessed byte by byte.
    return crypto.subtle.verify("HMAC", await key, hexToBytes(userHash), encoder.encode(userId));
  };
}

/** The hex HMAC a site's server sends as `context.userHash` (used by tests and docs examples). */
export async function userHashOf(secret: string, userId: string): Promise<string> {
  const encoder = new TextEncoder();
  const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  const mac = await crypto.subtle.sign("HMAC", key, encoder.encode(userId));
  return [...new Uint8Array(mac)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
