/**
 * SSRF guard for webhook destinations (PostHog GHSA-wqqw-r8c5-j67c is the attack: a webhook URL
 * pointing at internal services or cloud metadata). Checked when a destination is saved and again
 * before every send, and redirects are never followed.
 *
 * The WHATWG URL parser already canonicalises IPv4 in every spelling browsers accept
 * (`2130706433`, `0x7f.1`, `0177.0.0.1` all become `127.0.0.1`), so the range checks below see
 * dotted quads; IPv6 literals are parsed here, including IPv4-mapped and NAT64 forms.
 */
import { z } from "zod";

export type UrlVerdict = { ok: true; url: URL } | { ok: false; reason: string };

/** [first address, prefix length] of IPv4 ranges that must never be reached. */
const blockedV4: [string, number][] = [
  ["0.0.0.0", 8], // "this" network, unspecified
  ["10.0.0.0", 8], // private
  ["100.64.0.0", 10], // carrier-grade NAT
  ["127.0.0.0", 8], // loopback
  ["169.254.0.0", 16], // link-local, cloud metadata (169.254.169.254)
  ["172.16.0.0", 12], // private
  ["192.0.0.0", 24], // IETF protocol assignments
  ["192.0.2.0", 24], // documentation
  ["192.88.99.0", 24], // 6to4 relay anycast
  ["192.168.0.0", 16], // private
  ["198.18.0.0", 15], // benchmarking
  ["198.51.100.0", 24], // documentation
  ["203.0.113.0", 24], // documentation
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4], // reserved, broadcast
];

function v4ToInt(ip: string): number | null {
  const parts = ip.split(".");
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) return null;
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

/** True for IPv4 addresses in loopback, private, link-local, CGNAT, multicast and reserved ranges. */
export function isPrivateV4(ip: string): boolean {
  const n = v4ToInt(ip);
  if (n === null) return true;
  return blockedV4.some(([base, bits]) => {
    const size = 2 ** (32 - bits);
    const start = v4ToInt(base) as number;
    return n >= start && n < start + size;
  });
}

/** The eight 16-bit groups of an IPv6 address, or null when it is not one. */
export function parseV6(input: string): number[] | null {
  let ip = input.replace(/^\[|\]$/g, "").toLowerCase();
  const zone = ip.indexOf("%");
  if (zone >= 0) ip = ip.slice(0, zone);
  let tail: number[] = [];
  const embedded = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(ip);
  if (embedded) {
    const v4 = v4ToInt(embedded[2]);
    if (v4 === null) return null;
    tail = [Math.floor(v4 / 65536), v4 % 65536];
    ip = embedded[1].endsWith("::") ? embedded[1] : embedded[1].slice(0, -1);
  }
  const halves = ip.split("::");
  if (halves.length > 2) return null;
  const parse = (s: string) => (s === "" ? [] : s.split(":"));
  const head = parse(halves[0]);
  const rest = halves.length === 2 ? parse(halves[1]) : [];
  if ([...head, ...rest].some((g) => !/^[0-9a-f]{1,4}$/.test(g))) return null;
  const total = head.length + rest.length + tail.length;
  if (halves.length === 1 && total !== 8) return null;
  if (halves.length === 2 && total > 7) return null;
  const zeros = Array(8 - total).fill(0);
  return [...head.map((g) => Number.parseInt(g, 16)), ...zeros, ...rest.map((g) => Number.parseInt(g, 16)), ...tail];
}

const v4Of = (hi: number, lo: number) => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;

/** True for IPv6 loopback, unspecified, link-local, unique-local, multicast, documentation, and
 * for addresses that embed a private IPv4 (mapped, compatible, NAT64, 6to4). Teredo is refused. */
export function isPrivateV6(ip: string): boolean {
  const g = parseV6(ip);
  if (!g) return true;
  const zeroPrefix = (n: number) => g.slice(0, n).every((x) => x === 0);
  if (zeroPrefix(8)) return true; // ::
  if (zeroPrefix(7) && g[7] === 1) return true; // ::1
  if (zeroPrefix(5) && g[5] === 0xffff) return isPrivateV4(v4Of(g[6], g[7])); // ::ffff:a.b.c.d
  if (zeroPrefix(6)) return true; // ::a.b.c.d (deprecated IPv4-compatible)
  if (g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0)) {
    return isPrivateV4(v4Of(g[6], g[7])); // NAT64 64:ff9b::/96
  }
  if (g[0] === 0x2002) return isPrivateV4(v4Of(g[1], g[2])); // 6to4
  if (g[0] === 0x2001 && g[1] === 0) return true; // Teredo
  if (g[0] === 0x2001 && g[1] === 0x0db8) return true; // documentation
  if ((g[0] & 0xfe00) === 0xfc00) return true; // fc00::/7 unique-local
  if ((g[0] & 0xffc0) === 0xfe80) return true; // fe80::/10 link-local
  if ((g[0] & 0xffc0) === 0xfec0) return true; // fec0::/10 site-local (deprecated)
  if ((g[0] & 0xff00) === 0xff00) return true; // ff00::/8 multicast
  return false;
}

/** True when `address` (IPv4 or IPv6 text) must not be reached. */
export function isPrivateAddress(address: string): boolean {
  return address.includes(":") || address.startsWith("[") ? isPrivateV6(address) : isPrivateV4(address);
}

const blockedNames = /(^|\.)(localhost|internal|local|localdomain|home\.arpa|intranet|lan)$/;

/** Whether a hostname is an IP literal (the URL parser has canonicalised IPv4 already). */
export function isIpLiteral(hostname: string): boolean {
  return hostname.startsWith("[") || /^\d{1,3}(\.\d{1,3}){3}$/.test(hostname);
}

/**
 * Checks a destination URL. `allowPrivate` (ALLOW_PRIVATE_DESTINATIONS=true, local development)
 * permits `http:`, any port and private addresses; credentials in URLs are refused regardless.
 */
export function checkDestinationUrl(raw: string, allowPrivate: boolean): UrlVerdict {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, reason: "Not a valid URL" };
  }
  if (url.username || url.password) return { ok: false, reason: "Credentials in the URL are not allowed" };
  if (allowPrivate) {
    return url.protocol === "https:" || url.protocol === "http:"
      ? { ok: true, url }
      : { ok: false, reason: "Only http and https URLs are allowed" };
  }
  if (url.protocol !== "https:") return { ok: false, reason: "Only https URLs are allowed" };
  if (url.port !== "" && url.port !== "8443") return { ok: false, reason: "Only ports 443 and 8443 are allowed" };
  const host = url.hostname.replace(/\.+$/, "").toLowerCase();
  if (host === "") return { ok: false, reason: "The URL has no host" };
  if (isIpLiteral(host)) {
    return isPrivateAddress(host)
      ? { ok: false, reason: "The address is loopback, private, link-local or reserved" }
      : { ok: true, url };
  }
  if (!host.includes(".") || blockedNames.test(host)) {
    return { ok: false, reason: "Internal host names are not allowed" };
  }
  return { ok: true, url };
}

/** Resolves a host name to its A and AAAA addresses. */
export type Resolver = (hostname: string) => Promise<string[]>;

export class ResolveError extends Error {
  constructor(
    message: string,
    readonly permanent: boolean,
  ) {
    super(message);
  }
}

const dohAnswer = z.object({
  Status: z.number(),
  Answer: z
    .array(z.object({ type: z.number(), data: z.string().max(1000) }))
    .max(100)
    .optional(),
});

/**
 * DNS over HTTPS (Cloudflare's resolver). A Worker cannot resolve a name before `fetch`, so this
 * is how a name that points at a private address (`internal.example.com → 10.0.0.5`) is caught.
 * A rebinding attacker could still change the answer between this check and the request.
 */
export function dohResolver(fetchFn: typeof fetch = fetch): Resolver {
  return async (hostname) => {
    const addresses: string[] = [];
    for (const type of ["A", "AAAA"] as const) {
      const res = await fetchFn(
        `https://cloudflare-dns.com/dns-query?name=${encodeURIComponent(hostname)}&type=${type}`,
        { headers: { accept: "application/dns-json" }, signal: AbortSignal.timeout(5000) },
      );
      if (!res.ok) throw new ResolveError(`DNS lookup failed with HTTP ${res.status}`, false);
      const body = dohAnswer.safeParse(await res.json());
      if (!body.success) throw new ResolveError("DNS lookup returned an unexpected answer", false);
      if (body.data.Status === 3) throw new ResolveError("The host name does not exist", true);
      if (body.data.Status !== 0) throw new ResolveError(`DNS lookup failed (status ${body.data.Status})`, false);
      for (const a of body.data.Answer ?? []) if (a.type === 1 || a.type === 28) addresses.push(a.data);
    }
    if (addresses.length === 0) throw new ResolveError("The host name has no address", true);
    return addresses;
  };
}
