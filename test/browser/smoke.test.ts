import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchBrowser, tessera, watchErrors } from "./harness";

describe("the running product in a real browser", () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
  });

  it("shows the dashboard sign-in form with email and password fields", async () => {
    const page = await browser.newPage();
    const errors = watchErrors(page);
    await page.goto(`${tessera().baseUrl}/dashboard`);
    expect(await page.getAttribute("input[name=email]", "type")).toBe("email");
    expect(await page.getAttribute("input[name=password]", "type")).toBe("password");
    expect(errors).toEqual([]);
    await page.close();
  });
});
