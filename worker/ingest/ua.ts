/**
 * A small user-agent classifier: browser family and major version, OS family, device class.
 * Coarse on purpose (enough to segment on "mobile Safari users"); a full UA database would cost
 * more bundle than the whole ingest path.
 */

export interface DeviceInfo {
  browser: string | null;
  /** Major version only ("124"): finer versions add cardinality, not insight. */
  browserVersion: string | null;
  os: string | null;
  deviceType: "mobile" | "tablet" | "desktop" | null;
}

// Order matters: Chromium-based browsers also say "Chrome", and Chrome also says "Safari".
const BROWSERS: [name: string, pattern: RegExp][] = [
  ["Edge", /\bEdg(?:e|A|iOS)?\/(\d+)/],
  ["Opera", /\b(?:OPR|OPT|OPiOS)\/(\d+)|\bOpera\b.*\bVersion\/(\d+)/],
  ["Samsung Internet", /\bSamsungBrowser\/(\d+)/],
  ["Firefox", /\b(?:Firefox|FxiOS)\/(\d+)/],
  ["Chrome", /\b(?:Chrome|CriOS)\/(\d+)/],
  ["Internet Explorer", /\bMSIE (\d+)|\bTrident\/.*\brv:(\d+)/],
  ["Safari", /\bVersion\/(\d+)(?:[.\d]*)? (?:Mobile\/\S+ )?Safari\//],
];

const OSES: [name: string, pattern: RegExp][] = [
  ["Windows Phone", /\bWindows Phone\b/],
  ["Windows", /\bWindows\b/],
  ["iOS", /\b(?:iPhone|iPad|iPod)\b/],
  ["Android", /\bAndroid\b/],
  ["Chrome OS", /\bCrOS\b/],
  ["macOS", /\bMac OS X\b|\bMacintosh\b/],
  ["Linux", /\bLinux\b/],
];

const TABLET = /\biPad\b|\bTablet\b|\bPlayBook\b|\bSilk\b|\bAndroid\b(?!.*\bMobile\b)/i;
const MOBILE = /\bMobi|\biPhone\b|\biPod\b|\bWindows Phone\b|\bBlackBerry\b|\bOpera Mini\b/i;

/** Classifies a User-Agent string; unknown parts are null. */
export function classifyUserAgent(ua: string | null | undefined): DeviceInfo {
  if (!ua) return { browser: null, browserVersion: null, os: null, deviceType: null };
  let browser: string | null = null;
  let browserVersion: string | null = null;
  for (const [name, pattern] of BROWSERS) {
    const m = pattern.exec(ua);
    if (m) {
      browser = name;
      browserVersion = m[1] ?? m[2] ?? null;
      break;
    }
  }
  const os = OSES.find(([, pattern]) => pattern.test(ua))?.[0] ?? null;
  const deviceType = TABLET.test(ua) ? "tablet" : MOBILE.test(ua) ? "mobile" : os || browser ? "desktop" : null;
  return { browser, browserVersion, os, deviceType };
}
