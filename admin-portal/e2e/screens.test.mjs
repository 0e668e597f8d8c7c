// Every screen in 1366×800 and 390×844, in zh-CN and en: axe-core finds no critical or
// serious violation (1366 zh-CN and 390 en), the page never scrolls sideways (tables scroll in their cards),
// no text is left untranslated in English, and a screenshot of each is kept in
// target/portal-e2e/screens/.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { BASE_URL, SHOTS, COFFEE, OWNER, ALLIANCE, PLATFORM, launch, open, signIn, signInAs, settled, axe, noSidewaysScroll } from "./helpers.mjs";

// axe runs on every screen in two of the four variants (both sizes, both languages
// covered); it costs about half a second a screen.
const VARIANTS = [
  { width: 1366, height: 800, locale: "zh-CN", axe: true },
  { width: 1366, height: 800, locale: "en", axe: false },
  { width: 390, height: 844, locale: "zh-CN", axe: false },
  { width: 390, height: 844, locale: "en", axe: true },
];

/** Staff screens: [name, path, the element that shows it is there, what to open after]. */
const STAFF_SCREENS = [
  ["dashboard", "dashboard", "page-dashboard"],
  ["products", "products", "page-products"],
  ["product-dialog", "products", "page-products", async (page) => {
    await page.click('[data-test="product-create"]');
    await page.locator('[data-test="pd-name"]').waitFor();
  }],
  ["orders", "orders", "page-orders"],
  ["order-drawer", "orders", "page-orders", async (page) => {
    const open = page.locator('[data-test="order-open"]:visible').first();
    if (await open.count()) {
      await open.click();
      await page.locator('[data-test="drawer-status"]').waitFor();
    }
  }],
  ["members", "members", "page-members"],
  ["finance", "finance", "page-finance"],
  ["analytics", "analytics", "page-analytics"],
  ["member-drawer", "members?member=1", "member-drawer", async (page) => {
    await page.locator('[data-test="drawer-phone"]').waitFor();
  }],
  ["messages", "messages", "page-messages"],
  ["message-dialog", "messages", "page-messages", async (page) => {
    await page.click('[data-test="broadcast-new"]');
    await page.locator('[data-test="broadcast-title"]').waitFor();
  }],
  ["tasks", "tasks", "page-tasks"],
  ["task-dialog", "tasks", "page-tasks", async (page) => {
    await page.click('[data-test="task-new"]');
    await page.locator('[data-test="task-name"]').waitFor();
  }],
  ["checkin", "checkin", "page-checkin"],
  ["lottery", "lottery", "page-lottery"],
  ["lottery-dialog", "lottery", "page-lottery", async (page) => {
    await page.click('[data-test="lottery-new"]');
    await page.locator('[data-test="lottery-name-input"]').waitFor();
  }],
  ["lottery-draws", "lottery", "page-lottery", async (page) => {
    await page.locator('[data-test="lottery-draws"]:visible').first().click();
    await page.locator('[data-test="draws-table"]').waitFor();
  }],
  ["flash-sales", "flash-sales", "page-flash-sales"],
  ["flash-dialog", "flash-sales", "page-flash-sales", async (page) => {
    await page.click('[data-test="flash-new"]');
    await page.locator('[data-test="flash-price-input"]').waitFor();
  }],
  ["content", "content?kind=banner", "page-content"],
  ["content-page-dialog", "content?kind=page", "page-content", async (page) => {
    await page.click('[data-test="content-new"]');
    await page.locator('[data-test="content-title-input"]').waitFor();
  }],
  ["rules", "rules", "page-rules"],
  ["rule-editor", "rules/new", "page-rule"],
  ["staff", "staff", "page-staff"],
  ["api-keys", "api-keys", "page-api-keys"],
  ["webhooks", "webhooks", "page-webhooks"],
  ["webhook-dialog", "webhooks", "page-webhooks", async (page) => {
    await page.click('[data-test="webhook-new"]');
    await page.locator('[data-test="webhook-url-input"]').waitFor();
  }],
  ["audit-log", "audit-log", "page-audit-log"],
  ["settings", "settings", "page-settings"],
  ["settings-levels", "settings?tab=levels", "levels-table"],
];

let browser;
before(async () => {
  browser = await launch();
  mkdirSync(join(SHOTS, "screens"), { recursive: true });
});
after(async () => {
  await browser?.close();
});

async function check(page, name, v, errors) {
  await settled(page);
  // Let the opening transition of a drawer or dialog finish before measuring.
  const overlay = (await page.locator(".el-overlay:visible").count()) > 0;
  if (overlay) await page.waitForTimeout(350);
  const where = `${name} @ ${v.width}px ${v.locale}`;
  if (v.axe) await axe(page, where);
  await noSidewaysScroll(page, where);
  if (v.locale === "en") {
    // No Chinese UI text left in English (data such as product names may be Chinese).
    const chrome = await page.evaluate(() =>
      Array.from(document.querySelectorAll("th, label, button, .el-menu-item, .shell__title, .el-tabs__item, .el-dialog__title, .el-drawer__title"))
        .map((el) => el.textContent.trim())
        .filter((s) => /[\u3400-\u9fff]/.test(s) && s !== "中文"),
    );
    assert.deepEqual(chrome, [], `${where}: Chinese text in the English UI`);
  }
  // A drawer or dialog is fixed to the window: a full-page shot would cut it.
  await page.screenshot({ path: join(SHOTS, "screens", `${name}-${v.width}-${v.locale}.png`), fullPage: !overlay });
  assert.deepEqual(errors, [], `${where}: errors in the page`);
}

for (const v of VARIANTS) {
  test(`every screen at ${v.width}×${v.height} in ${v.locale}`, async () => {
    const { context, page, errors } = await open(browser, v);
    try {
      await page.goto(`${BASE_URL}/portal/login`);
      await page.locator('[data-test="login-form"]').waitFor();
      await check(page, "login", v, errors);

      await signIn(page, COFFEE.slug, OWNER);
      for (const [name, path, marker, then] of STAFF_SCREENS) {
        await page.goto(`${BASE_URL}/portal/${path}`);
        await page.locator(`[data-test="${marker}"]`).waitFor();
        if (then) await then(page);
        await check(page, name, v, errors);
      }
      if (v.width < 768) {
        // The menu lives in a drawer on narrow screens.
        await page.goto(`${BASE_URL}/portal/dashboard`);
        await page.locator(".shell__burger").click();
        await page.locator(".shell__drawer .el-menu").waitFor();
        await check(page, "menu-drawer", v, errors);
      }
      await page.goto(`${BASE_URL}/portal/no/such/screen`);
      await page.locator('[data-test="page-not-found"]').waitFor();
      await check(page, "not-found", v, errors);

      await page.goto(`${BASE_URL}/portal/dashboard`);
      await page.locator('[data-test="sign-out"]').click();
      await page.locator('[data-test="login-form"]').waitFor();
      await signInAs(page, "alliance", { scope: ALLIANCE.slug, email: ALLIANCE.email, password: ALLIANCE.password });
      await page.locator('[data-test="alliance-name"]').waitFor();
      await check(page, "alliance", v, errors);
      await page.goto(`${BASE_URL}/portal/alliance/budgets`);
      await page.locator('[data-test="budgets-table"] [data-test="budget-balance"]').first().waitFor();
      await check(page, "alliance-budgets", v, errors);
      await page.goto(`${BASE_URL}/portal/alliance/settlement`);
      await page.locator('[data-test="settlement-state"]').waitFor();
      await check(page, "alliance-settlement", v, errors);
      await page.goto(`${BASE_URL}/portal/alliance/rules`);
      await page.locator('[data-test="page-alliance-rules"]').waitFor();
      await check(page, "alliance-rules", v, errors);
      await page.goto(`${BASE_URL}/portal/alliance/rules/new`);
      await page.locator('[data-test="page-alliance-rule"] [data-test="dry-mall"]').waitFor();
      await check(page, "alliance-rule-editor", v, errors);

      await page.locator('[data-test="sign-out"]').click();
      await page.locator('[data-test="login-form"]').waitFor();
      await signInAs(page, "platform", { email: PLATFORM.email, password: PLATFORM.password });
      await page.locator('[data-test="page-tenants"]').waitFor();
      await check(page, "platform-tenants", v, errors);
      await page.goto(`${BASE_URL}/portal/platform/alliances`);
      await page.locator('[data-test="page-alliances"]').waitFor();
      await check(page, "platform-alliances", v, errors);
      await page.goto(`${BASE_URL}/portal/platform/recorded-messages`);
      await page.locator('[data-test="page-recorded-messages"]').waitFor();
      await settled(page);
      await check(page, "platform-recorded-messages", v, errors);
      await page.goto(`${BASE_URL}/portal/platform/health`);
      await page.locator('[data-test="clusters-table"] [data-test="cluster-name"]').first().waitFor();
      await check(page, "platform-health", v, errors);
    } finally {
      await context.close();
    }
  });
}
