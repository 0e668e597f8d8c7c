// Shared by the portal's end-to-end tests: the browser, sign-in, waiting, the member
// API, axe-core and screenshots.
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const BASE_URL = (process.env.PORTAL_BASE_URL || "").replace(/\/+$/, "");
if (!BASE_URL) throw new Error("set PORTAL_BASE_URL to the server's base URL, e.g. http://127.0.0.1:18080");
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
export const SHOTS = process.env.PORTAL_SCREENSHOT_DIR || resolve(dirname(fileURLToPath(import.meta.url)), "../../target/portal-e2e");

// The demo data set (tenant-api/src/cli/demo.rs).
export const COFFEE = { slug: "demo-coffee", name: "街角咖啡 Corner Coffee" };
export const BOOKS = { slug: "demo-books", name: "半页书店 Half Page Books" };
export const OWNER = "owner@coffee.demo";
export const OPERATOR = "operator@coffee.demo";
export const PASSWORD = "demo-staff-pass";
export const MEMBER = { phone: "13800000001", password: "demo-member-pass" };
export const MEMBER_PHONES = ["13800000001", "13800000002", "13800000003"];
export const ALLIANCE = { slug: "demo-alliance", email: "alliance@pointsmall.demo", password: "demo-alliance-pass" };
export const PLATFORM = { email: "admin@pointsmall.demo", password: "demo-admin-pass" };

/** Web-first waits poll up to this long; a healthy local server answers in ms. */
export const TIMEOUT = 15_000;

const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

export async function launch() {
  mkdirSync(SHOTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"],
  });
}

/**
 * A fresh context and page (no shared sessionStorage); uncaught page errors and
 * anything the Content-Security-Policy blocks are collected in `errors`.
 */
export async function open(browser, { width = 1366, height = 800, locale = "zh-CN" } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, locale });
  context.setDefaultTimeout(TIMEOUT);
  // The portal keeps its language in localStorage; start every context in `locale`.
  await context.addInitScript((l) => {
    if (!localStorage.getItem("pm.portal.locale")) localStorage.setItem("pm.portal.locale", l);
  }, locale === "en" ? "en" : "zh-CN");
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => {
    // Errors the app logs (Vue reports a failing watcher or render this way) and CSP
    // refusals; failed requests are expected (401, 403, 422 are tested on purpose).
    if (m.type() === "error" && !/^Failed to load resource/.test(m.text())) errors.push(`console: ${m.text()}`);
  });
  return { context, page, errors };
}

/** Signs in as merchant staff and waits for the first screen. */
export async function signIn(page, tenant, email, password = PASSWORD) {
  await page.goto(`${BASE_URL}/portal/login`);
  await page.locator('[data-test="login-form"]').waitFor();
  await page.fill("#login-scope", tenant);
  await page.fill("#login-email", email);
  await page.fill("#login-password", password);
  await page.click('[data-test="login-submit"]');
  await page.locator('[data-test="sign-out"]').waitFor();
}

/** Signs in as an alliance admin or the platform operator. */
export async function signInAs(page, audience, { scope = "", email, password }) {
  await page.goto(`${BASE_URL}/portal/login?audience=${audience}`);
  await page.locator('[data-test="login-form"]').waitFor();
  if (scope) await page.fill("#login-scope", scope);
  await page.fill("#login-email", email);
  await page.fill("#login-password", password);
  await page.click('[data-test="login-submit"]');
  await page.locator('[data-test="sign-out"]').waitFor();
}

/** Polls `fn` until it returns a truthy value (fails on timeout). */
export async function eventually(fn, what, timeout = TIMEOUT) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) assert.fail(`timed out waiting for ${what} (last: ${last})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until no loading mask or "loading" state is on the page. */
export async function settled(page) {
  await eventually(
    async () => (await page.locator(".el-loading-mask:visible").count()) === 0 && (await page.locator('[data-test="list-loading"]').count()) === 0,
    "loading to finish",
  );
  await page.waitForTimeout(50);
}

/** The menu entries shown, by route name. */
export async function menu(page) {
  const items = page.locator('[data-test="menu"] [data-test^="menu-"]');
  const out = [];
  for (let i = 0; i < (await items.count()); i++) out.push((await items.nth(i).getAttribute("data-test")).slice(5));
  return out;
}

/** Rows of an el-table as arrays of cell texts (the fixed-column copies left out). */
export async function tableRows(page, testId) {
  const table = page.locator(`[data-test="${testId}"]`);
  return table.evaluate((el) =>
    Array.from(el.querySelectorAll(".el-table__body-wrapper tbody tr")).map((tr) =>
      Array.from(tr.querySelectorAll("td")).map((td) => td.innerText.trim()),
    ),
  );
}

/** Picks an option of the el-select `selector` by its visible text. */
export async function pick(page, selector, text) {
  await page.locator(selector).click();
  const option = page.locator(".el-select-dropdown__item:visible", { hasText: text }).first();
  await option.click();
}

/** Calls the API as a member of `tenant` (password login); answers {status, body}. */
export async function memberApi(request, tenant) {
  const login = await request.post(`${BASE_URL}/v1/tenants/${tenant}/auth/login`, { data: { identifier: MEMBER.phone, password: MEMBER.password } });
  assert.equal(login.status(), 200, `member login: ${await login.text()}`);
  const token = (await login.json()).access_token;
  return async (method, path, data, headers = {}) => {
    const res = await request.fetch(`${BASE_URL}/v1/tenants/${tenant}${path}`, {
      method,
      data,
      headers: { Authorization: `Bearer ${token}`, ...headers },
    });
    const text = await res.text();
    let body = null;
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
    return { status: res.status(), body };
  };
}

/** Runs axe-core in the page; fails on any critical or serious violation. */
export async function axe(page, where) {
  // Evaluated over the DevTools protocol: the page's CSP (rightly) refuses inline scripts.
  if (!(await page.evaluate(() => typeof window.axe !== "undefined"))) await page.evaluate(axeSource);
  const result = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) }));
  });
  const bad = result.filter((v) => v.impact === "critical" || v.impact === "serious");
  assert.deepEqual(bad, [], `${where}: axe found critical/serious violations:\n${JSON.stringify(bad, null, 2)}`);
  return result;
}

/** Fails when the page itself scrolls sideways (tables scroll inside their cards). */
export async function noSidewaysScroll(page, where) {
  const { scroll, width } = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, width: window.innerWidth }));
  assert.ok(scroll <= width + 1, `${where}: the page scrolls sideways (${scroll} px wide in a ${width} px window)`);
}

export async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** A 24×24 PNG (red), built with zlib so the server's image decoder accepts it. */
export async function pngBytes() {
  const { deflateSync, crc32 } = await import("node:zlib");
  const w = 24, h = 24;
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) raw[y * (w * 3 + 1) + 1 + x * 3] = 220;
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32 ? crc32(td) : crcOf(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk("IHDR", ihdr), chunk("IDAT", deflateSync(raw)), chunk("IEND", Buffer.alloc(0))]);
}

// zlib.crc32 exists from Node 20.15 / 22.2; this is for older Nodes.
function crcOf(buf) {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}
