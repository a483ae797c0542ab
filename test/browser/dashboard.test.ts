/**
 * The dashboard in a real browser (Debian Chromium) against a real `wrangler dev`: sign-in per
 * role, contacts, notes and tasks, lifecycle, CSV import, the segment builder's live preview, slot
 * editing seen by /v1/personalize, the live debugger, and hostile tracked data that must never run.
 * Screenshots of the main pages go to test-results/screenshots/ for review.
 */
import { mkdirSync } from "node:fs";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminApi, eventually, launchBrowser, tessera, watchErrors } from "./harness";

const SHOTS = "test-results/screenshots";
const PASSWORD = "correct horse battery staple";
const run = Date.now().toString(36);

// Payloads that execute if any of them is ever parsed as HTML or followed as a link.
const IMG = `<img src=x onerror="window.__xss=1">`;
const SCRIPT = "<script>window.__xss=1</script>";
const SVG = `"><svg onload="window.__xss=1">`;
const JS_URL = "javascript:window.__xss=1";

type Role = "admin" | "marketer" | "viewer";
const emails: Record<Role, string> = {
  admin: `admin-${run}@example.com`,
  marketer: `marketer-${run}@example.com`,
  viewer: `viewer-${run}@example.com`,
};

let browser: Browser;
let site: { id: string; writeKey: string };

/** Sends Segment messages to /v1/batch as a server would (no Origin), with an optional user agent. */
async function track(batch: Record<string, unknown>[], userAgent = "dashboard-test") {
  const res = await fetch(`${tessera().baseUrl}/v1/batch`, {
    method: "POST",
    headers: {
      Authorization: `Basic ${Buffer.from(`${site.writeKey}:`).toString("base64")}`,
      "Content-Type": "application/json",
      "User-Agent": userAgent,
    },
    body: JSON.stringify({ batch }),
  });
  if (!res.ok) throw new Error(`/v1/batch ${res.status} ${await res.text()}`);
}

/** Waits until the pipeline has stitched a profile for `email`, and returns its id. */
async function profileIdOf(email: string): Promise<string> {
  return eventually(async () => {
    const res = await fetch(`${tessera().baseUrl}/api/profiles/lookup?type=email&value=${encodeURIComponent(email)}`, {
      headers: { Authorization: `Bearer ${tessera().adminToken}` },
    });
    return res.ok ? ((await res.json()) as { id: string }).id : null;
  }, 20_000);
}

/** Endpoints some of these tests need; a test whose endpoint is missing is skipped, not faked. */
async function exists(path: string): Promise<boolean> {
  const res = await fetch(`${tessera().baseUrl}${path}`, {
    headers: { Authorization: `Bearer ${tessera().adminToken}` },
  });
  return res.status !== 404 || !(await res.text()).includes("No such route");
}

/** A signed-in page for `role`, with dialogs and the XSS flag watched. */
async function signedIn(
  role: Role,
): Promise<{ context: BrowserContext; page: Page; dialogs: string[]; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const dialogs: string[] = [];
  page.on("dialog", (d) => {
    // The dashboard's own confirmations are expected; anything else is an injected alert.
    if (d.type() !== "confirm") dialogs.push(`${d.type()}: ${d.message()}`);
    d.accept().catch(() => {});
  });
  const errors = watchErrors(page);
  await page.goto(`${tessera().baseUrl}/dashboard`);
  await page.fill("input[name=email]", emails[role]);
  await page.fill("input[name=password]", PASSWORD);
  await page.press("input[name=password]", "Enter");
  await page.waitForSelector(".topbar");
  return { context, page, dialogs, errors };
}

const xssFlag = (page: Page) => page.evaluate(() => (window as unknown as { __xss?: unknown }).__xss);

async function shot(page: Page, name: string) {
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  browser = await launchBrowser();
  for (const role of ["admin", "marketer", "viewer"] as const) {
    await adminApi("/api/users", { body: { email: emails[role], password: PASSWORD, role, name: `${role} ${run}` } });
  }
  site = await adminApi("/api/sites", { body: { name: `Shop ${run}`, allowedOrigins: ["https://shop.example"] } });
  await track([
    {
      type: "identify",
      userId: `ada-${run}`,
      anonymousId: `anon-ada-${run}`,
      traits: { email: `ada-${run}@example.com`, name: `Ada Lovelace ${run}`, plan: "pro" },
    },
    {
      type: "identify",
      userId: `grace-${run}`,
      traits: { email: `grace-${run}@example.com`, name: `Grace Hopper ${run}`, plan: "pro" },
    },
    { type: "track", userId: `ada-${run}`, event: "Product Added", properties: { sku: "tsr-mug", price: 12 } },
  ]);
  // Hostile data in every place tracked data reaches the dashboard: traits, event names,
  // properties, URLs, titles and the user agent.
  await track(
    [
      {
        type: "identify",
        userId: `mallory-${run}`,
        anonymousId: `anon-mallory-${run}`,
        traits: {
          email: `mallory-${run}@example.com`,
          name: `${IMG} Mallory ${run}`,
          website: JS_URL,
          bio: SCRIPT,
          company: SVG,
          plan: "pro",
        },
      },
      { type: "track", userId: `mallory-${run}`, event: IMG, properties: { url: JS_URL, note: SCRIPT, html: SVG } },
      {
        type: "page",
        userId: `mallory-${run}`,
        name: SCRIPT,
        properties: { url: JS_URL, path: `/${IMG}`, title: SVG, referrer: JS_URL },
      },
    ],
    `Mozilla/5.0 ${IMG}${SCRIPT}`,
  );
  await Promise.all([profileIdOf(`ada-${run}@example.com`), profileIdOf(`mallory-${run}@example.com`)]);
}, 120_000);

afterAll(async () => {
  await browser?.close();
});

describe("sign-in", () => {
  it("works without JavaScript: the form posts and Enter submits", async () => {
    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    await page.goto(`${tessera().baseUrl}/dashboard`);
    await page.fill("input[name=email]", emails.viewer);
    await page.fill("input[name=password]", PASSWORD);
    await Promise.all([page.waitForNavigation(), page.press("input[name=password]", "Enter")]);
    expect(new URL(page.url()).pathname).toBe("/dashboard");
    expect((await context.cookies()).some((c) => c.name === "tessera_session" && c.httpOnly)).toBe(true);
    await context.close();
  });

  it("says so when the password is wrong", async () => {
    const page = await browser.newPage();
    await page.goto(`${tessera().baseUrl}/dashboard`);
    await page.fill("input[name=email]", emails.viewer);
    await page.fill("input[name=password]", "not the password at all");
    await page.press("input[name=password]", "Enter");
    await expect.poll(() => page.textContent(".error")).toContain("Wrong email or password");
    await page.close();
  });

  const visible: Record<Role, { users: boolean; destinations: boolean; newContact: boolean }> = {
    admin: { users: true, destinations: true, newContact: true },
    marketer: { users: false, destinations: false, newContact: true },
    viewer: { users: false, destinations: false, newContact: false },
  };
  for (const role of ["admin", "marketer", "viewer"] as const) {
    it(`shows the ${role} only what the ${role} role may do`, async () => {
      const { context, page, errors } = await signedIn(role);
      const nav = await page.locator(".nav a").allTextContents();
      expect(nav.includes("Users")).toBe(visible[role].users);
      expect(nav.includes("Destinations")).toBe(visible[role].destinations);
      await page.click(".nav a:text('Contacts')");
      await page.waitForSelector("table.list, p.muted");
      expect(await page.locator("a:text('New contact')").count()).toBe(visible[role].newContact ? 1 : 0);
      expect(await page.textContent(".who")).toContain(role);
      expect(errors).toEqual([]);
      await context.close();
    });
  }

  it("ends the session when signing out", async () => {
    const { context, page } = await signedIn("viewer");
    await page.click("button:text('Sign out')");
    await page.waitForSelector("input[name=password]");
    await page.reload();
    await page.waitForSelector("input[name=password]");
    expect(await page.locator(".topbar").count()).toBe(0);
    await context.close();
  });
});

describe("contacts", () => {
  it("finds a contact by search, opens it by its deep link, and goes back with the back button", async () => {
    const { context, page } = await signedIn("marketer");
    await page.goto(`${tessera().baseUrl}/dashboard/contacts`);
    await page.fill("input[type=search]", `ada-${run}`);
    await page.press("input[type=search]", "Enter");
    await page.click(`a:text('Ada Lovelace ${run}')`);
    await page.waitForSelector(`h1:text('Ada Lovelace ${run}')`);
    expect(page.url()).toMatch(/\/dashboard\/contacts\/[^/]+$/);
    await shot(page, "contact");
    const deepLink = page.url();
    await page.goBack();
    await page.waitForSelector("input[type=search]");
    expect(new URL(page.url()).searchParams.get("q")).toBe(`ada-${run}`);
    await page.goto(deepLink);
    await page.waitForSelector(`h1:text('Ada Lovelace ${run}')`);
    await context.close();
  });

  it("adds a note and a task, and changes the lifecycle stage", async () => {
    const id = await profileIdOf(`ada-${run}@example.com`);
    const { context, page, errors } = await signedIn("marketer");
    await page.goto(`${tessera().baseUrl}/dashboard/contacts/${id}`);
    await page.fill("textarea[name=body]", `Called Ada about the ${run} renewal`);
    await page.click("button:text('Add note')");
    await page.waitForSelector(`.note-body:text('Called Ada about the ${run} renewal')`);
    await page.fill("input[name=title]", `Send proposal ${run}`);
    await page.click("button:text('Add task')");
    await page.waitForSelector(`ul.tasks li:has-text('Send proposal ${run}')`);
    await page.selectOption("#stage", "customer");
    await eventually(
      async () =>
        (await adminApi<{ lifecycleStage: string | null }>(`/api/contacts/${id}`)).lifecycleStage === "customer",
    );
    const notes = await adminApi<{ items: { body: string; author: { email: string } | null }[] }>(
      `/api/contacts/${id}/notes`,
    );
    expect(notes.items.find((n) => n.body.includes(run))?.author?.email).toBe(emails.marketer);
    expect(errors).toEqual([]);
    await context.close();
  });

  it("imports a CSV: preview, mapping, import, report", async () => {
    const { context, page } = await signedIn("marketer");
    await page.goto(`${tessera().baseUrl}/dashboard/contacts/import`);
    const csv = `Email,Full Name,Plan\nlin-${run}@example.com,Lin ${run},pro\nnot-an-email,Broken,free\nkai-${run}@example.com,Kai ${run},team\n`;
    await page.setInputFiles("input[type=file]", {
      name: "contacts.csv",
      mimeType: "text/csv",
      buffer: Buffer.from(csv),
    });
    await page.waitForSelector("table.import");
    expect(await page.locator("table.import tbody tr").count()).toBe(3);
    // The invalid email is flagged on its line of the file (the header is line 1).
    expect(await page.locator("table.import tr.bad td").first().textContent()).toBe("3");
    await page.click("button:text('3. Import')");
    await page.waitForSelector("text=rows accepted");
    expect(await page.locator(".tile:has-text('rows accepted') .n").textContent()).toBe("2");
    expect(await page.locator(".tile:has-text('rows rejected') .n").textContent()).toBe("1");
    // Once the pipeline has stored both rows, the report splits them into created and merged.
    await expect
      .poll(() => page.locator(".tile:has-text('contacts created') .n").textContent(), { timeout: 20_000 })
      .toBe("2");
    await shot(page, "import-report");
    await profileIdOf(`kai-${run}@example.com`);
    await context.close();
  });
});

describe("segments", () => {
  it("counts the matching profiles live while a rule is built, then saves it", async () => {
    const { context, page, errors } = await signedIn("marketer");
    await page.goto(`${tessera().baseUrl}/dashboard/segments/new`);
    await page.fill("#seg-name", `Pro plan ${run}`);
    await page.fill("#seg-key", `pro-${run}`);
    await page.fill("input[aria-label='Trait name']", "plan");
    await page.fill("input[aria-label='Value']", "pro");
    const rule = { all: [{ trait: "plan", op: "eq", value: "pro" }] };
    const expected = await adminApi<{ count: number }>("/api/segments/preview", { body: { rule } });
    expect(expected.count).toBeGreaterThanOrEqual(3);
    await expect
      .poll(() => page.textContent(".preview-count"), { timeout: 10_000 })
      .toBe(expected.count.toLocaleString("en-US"));
    await shot(page, "segment-builder");
    await page.click("button:text('Create segment')");
    await page.waitForURL(`**/dashboard/segments/pro-${run}`);
    const saved = await adminApi<{ rule: unknown }>(`/api/segments/pro-${run}`);
    expect(saved.rule).toEqual(rule);
    expect(errors).toEqual([]);
    await context.close();
  });
});

describe("personalization", () => {
  it("changes what /v1/personalize answers when a slot is edited", async () => {
    const key = `vip-${run}`;
    await adminApi("/api/segments", {
      body: { key, name: `VIP ${run}`, rule: { trait: "plan", op: "eq", value: "pro" } },
    });
    await adminApi(`/api/slots/hero-${run}`, { method: "PUT", body: { default: "Hello, stranger", rules: [] } });
    const decide = async () => {
      const res = await fetch(
        `${tessera().baseUrl}/v1/personalize?slots=hero-${run}&anonymousId=anon-ada-${run}&writeKey=${site.writeKey}`,
      );
      return ((await res.json()) as { slots: Record<string, { content: unknown }> }).slots[`hero-${run}`]?.content;
    };
    await eventually(async () => (await decide()) === "Hello, stranger");

    const { context, page, errors } = await signedIn("marketer");
    await page.goto(`${tessera().baseUrl}/dashboard/slots/hero-${run}`);
    await page.click("button:text('+ rule')");
    await page.selectOption("#rule-seg-0", key);
    await page.fill("#rule-content-0", `Welcome back, VIP ${run}`);
    await page.click("button:text('Save slot')");
    await page.waitForSelector("text=Slot saved");
    await shot(page, "slot");
    await eventually(async () => (await decide()) === `Welcome back, VIP ${run}`, 15_000);
    expect(errors).toEqual([]);
    await context.close();
  });
});

describe("live event debugger", () => {
  it("shows an event within seconds of it being sent", async (ctx) => {
    if (!(await exists("/api/events/latest"))) ctx.skip();
    const { context, page, errors } = await signedIn("viewer");
    await page.goto(`${tessera().baseUrl}/dashboard/debugger`);
    await page.waitForSelector("span.badge.live");
    await track([{ type: "track", anonymousId: `anon-debug-${run}`, event: `Debugger Probe ${run}` }]);
    await page.waitForSelector(`text=Debugger Probe ${run}`, { timeout: 15_000 });
    await page.click(`summary:has-text('Debugger Probe ${run}')`);
    // Expanded, the event shows its JSON (as text).
    await page.waitForSelector(`pre.json:has-text('"event": "Debugger Probe ${run}"')`);
    await shot(page, "debugger");
    expect(await page.locator(".content .error").count()).toBe(0);
    expect(errors).toEqual([]);
    await context.close();
  });
});

describe("hostile tracked data", () => {
  it("never executes payloads from traits, events, properties, URLs or user agents", async () => {
    const id = await profileIdOf(`mallory-${run}@example.com`);
    const { context, page, dialogs, errors } = await signedIn("admin");
    const pages = [
      "/dashboard",
      `/dashboard/contacts?q=mallory-${run}`,
      `/dashboard/contacts/${id}`,
      "/dashboard/segments",
      `/dashboard/debugger`,
    ];
    for (const path of pages) {
      await page.goto(`${tessera().baseUrl}${path}`);
      await page.waitForSelector(".content h1");
      await page.waitForLoadState("networkidle");
    }
    await page.goto(`${tessera().baseUrl}/dashboard/contacts/${id}`);
    await page.waitForSelector("text=Timeline");
    await page.waitForSelector("ul.events li");
    // Open every event's JSON, then click whatever shows the javascript: URL.
    for (const summary of await page.locator("ul.events summary").all()) await summary.click();
    for (const el of await page.locator(`text=${JS_URL}`).all()) await el.click({ force: true }).catch(() => {});
    await shot(page, "contact-hostile");
    // The payload text is shown, as text.
    expect(await page.textContent("h1")).toContain(IMG);
    expect(await page.locator("a[href^='javascript:' i]").count()).toBe(0);
    expect(await page.locator("img[src=x], svg[onload], script:not([src])").count()).toBe(0);
    expect(await xssFlag(page)).toBeUndefined();
    expect(dialogs).toEqual([]);
    expect(errors).toEqual([]);
    await context.close();
  });
});

/** One CSV field, quoted (RFC 4180), so payloads with quotes and commas survive as one value. */
const csvField = (v: string) => `"${v.replaceAll('"', '""')}"`;

describe("hostile data from imports and from names people give things", () => {
  it("never executes payloads on any dashboard page", async () => {
    const mallory = await profileIdOf(`mallory-${run}@example.com`);
    const segmentKey = `xss_${run}`;
    const slotKey = `xss-slot-${run}`;
    await adminApi(`/api/contacts/${mallory}/notes`, { body: { body: `${SCRIPT} ${IMG}` } });
    await adminApi(`/api/contacts/${mallory}/tasks`, { body: { title: `${IMG} call back` } });
    await adminApi("/api/segments", {
      body: {
        key: segmentKey,
        name: `${IMG} segment`,
        description: SCRIPT,
        rule: { trait: "plan", op: "eq", value: "pro" },
      },
    });
    await adminApi(`/api/slots/${slotKey}`, {
      method: "PUT",
      body: { default: SCRIPT, rules: [{ segment: segmentKey, content: IMG }], goalEvent: IMG },
    });
    const destination = await adminApi<{ id: string }>("/api/destinations", {
      body: { name: `${SVG} hook`, url: "http://127.0.0.1:9/hook", events: [IMG] },
    });
    await adminApi("/api/sites", { body: { name: `${SVG} site`, allowedOrigins: [] } });
    await adminApi("/api/users", {
      body: { email: `xss-${run}@example.com`, password: PASSWORD, role: "viewer", name: SCRIPT },
    });

    const { context, page, dialogs, errors } = await signedIn("admin");
    // An imported file whose header and cells are payloads: previewed, mapped and imported.
    await page.goto(`${tessera().baseUrl}/dashboard/contacts/import`);
    const csv = [
      ["Email", "Name", IMG, "Company"].map(csvField).join(","),
      [`imported-${run}@example.com`, `${SVG} Imported ${run}`, SCRIPT, JS_URL].map(csvField).join(","),
      [`=HYPERLINK("${JS_URL}")`, IMG, SVG, SCRIPT].map(csvField).join(","),
    ].join("\n");
    await page.setInputFiles("input[type=file]", {
      name: `${IMG}.csv`,
      mimeType: "text/csv",
      buffer: Buffer.from(csv),
    });
    await page.waitForSelector("table.import");
    await page.click("button:text('3. Import')");
    await page.waitForSelector("text=rows accepted");
    expect(await xssFlag(page), "import preview and report").toBeUndefined();
    const imported = await profileIdOf(`imported-${run}@example.com`);

    const pages = [
      "/dashboard",
      "/dashboard/contacts",
      `/dashboard/contacts?q=imported-${run}`,
      `/dashboard/contacts/${imported}`,
      `/dashboard/contacts/${mallory}`,
      "/dashboard/segments",
      `/dashboard/segments/${segmentKey}`,
      "/dashboard/slots",
      `/dashboard/slots/${slotKey}`,
      "/dashboard/destinations",
      `/dashboard/destinations/${destination.id}`,
      "/dashboard/debugger",
      "/dashboard/sites",
      "/dashboard/users",
    ];
    for (const path of pages) {
      await page.goto(`${tessera().baseUrl}${path}`);
      await page.waitForSelector(".content h1");
      // Rendered once nothing on the page is still loading (the debugger keeps polling, so
      // "network idle" would never come).
      await page.waitForFunction(() => !document.querySelector(".content")?.textContent?.includes("Loading…"));
      expect(await page.locator("a[href^='javascript:' i]").count(), path).toBe(0);
      expect(await page.locator("img[src=x], svg[onload], script:not([src])").count(), path).toBe(0);
      expect(await xssFlag(page), path).toBeUndefined();
    }
    // The payloads are shown, as text, where they were put.
    await page.goto(`${tessera().baseUrl}/dashboard/segments/${segmentKey}`);
    await page.waitForSelector(".content h1:has-text('segment')");
    expect(await page.textContent(".content h1")).toContain(IMG);
    await page.goto(`${tessera().baseUrl}/dashboard/contacts/${imported}`);
    await page.waitForSelector(`.content h1:has-text('Imported ${run}')`);
    expect(await page.textContent(".content h1")).toContain(SVG);
    expect(dialogs).toEqual([]);
    expect(errors).toEqual([]);
    await context.close();
  });
});

describe("screenshots", () => {
  it("captures the main pages at laptop and tablet widths", async () => {
    const { context, page, errors } = await signedIn("admin");
    const pages: [string, string][] = [
      ["overview", "/dashboard"],
      ["contacts", "/dashboard/contacts"],
      ["segments", "/dashboard/segments"],
      ["segment", `/dashboard/segments/pro-${run}`],
      ["slots", "/dashboard/slots"],
      ["destinations", "/dashboard/destinations"],
      ["sites", "/dashboard/sites"],
      ["users", "/dashboard/users"],
    ];
    // Every page at laptop width; the densest ones again at tablet width.
    for (const width of [1280, 820]) {
      await page.setViewportSize({ width, height: 900 });
      for (const [name, path] of width === 1280 ? pages : pages.slice(0, 4)) {
        await page.goto(`${tessera().baseUrl}${path}`);
        await page.waitForSelector(".content h1");
        await page.waitForLoadState("networkidle");
        await shot(page, `${name}-${width}`);
        expect(await page.locator(".content .error").count(), `${path} shows an error`).toBe(0);
      }
    }
    expect(errors).toEqual([]);
    await context.close();
  });
});
