// End-to-end tests of the merchant portal (/portal/) in headless Chromium.
//
//   PORTAL_BASE_URL=http://127.0.0.1:18080 node --test admin-portal/e2e/
//
// Needs a running server over a database seeded with `pointsmall demo` (scripts/e2e.sh
// does all of that). Every test gets a fresh browser context: no shared cookies or
// sessionStorage. Screenshots go to target/portal-e2e/ (or PORTAL_SCREENSHOT_DIR).

import { test, before, after, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const BASE_URL = (process.env.PORTAL_BASE_URL || "").replace(/\/+$/, "");
if (!BASE_URL) throw new Error("set PORTAL_BASE_URL to the server's base URL, e.g. http://127.0.0.1:18080");
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const SHOTS = process.env.PORTAL_SCREENSHOT_DIR
  || resolve(dirname(fileURLToPath(import.meta.url)), "../../target/portal-e2e");

// The demo data set (tenant-api/src/demo.rs).
const COFFEE = { slug: "demo-coffee", name: "街角咖啡 Corner Coffee" };
const BOOKS = { slug: "demo-books", name: "半页书店 Half Page Books" };
const OWNER = "owner@coffee.demo";
const OPERATOR = "operator@coffee.demo";
const PASSWORD = "demo-staff-pass";
const MEMBER_PHONES = ["13800000001", "13800000002", "13800000003"];

// Web-first assertions poll up to this long; a healthy local server answers in ms.
const TIMEOUT = 10_000;

let browser;
let context;
let page;
let pageErrors;

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync",
    ],
  });
});

after(async () => {
  await browser?.close();
});

beforeEach(async () => {
  context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: "zh-CN" });
  context.setDefaultTimeout(TIMEOUT);
  page = await context.newPage();
  // Any uncaught exception in the portal's JavaScript fails the test.
  pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(e));
  // So does anything the Content-Security-Policy blocks.
  page.on("console", (m) => {
    if (m.type() === "error" && /Content.Security.Policy/i.test(m.text())) pageErrors.push(`CSP: ${m.text()}`);
  });
});

afterEach(async () => {
  await context?.close();
  assert.deepEqual(pageErrors.map(String), [], "uncaught errors in the page");
});

// --- helpers -------------------------------------------------------------------------

async function openPortal() {
  const res = await page.goto(`${BASE_URL}/portal/`);
  assert.equal(res.status(), 200);
  await page.locator("#login-form").waitFor({ state: "visible" });
}

async function fillSignIn(tenant, email, password) {
  await page.fill("#login-tenant", tenant);
  await page.fill("#login-email", email);
  await page.fill("#login-password", password);
  await page.click("#login-submit");
}

/** Signs in and waits for the overview of the mall. */
async function signIn(tenant, email, password) {
  await openPortal();
  await fillSignIn(tenant, email, password);
  await page.locator("#app-view").waitFor({ state: "visible" });
  await page.locator("#tenant-name").waitFor({ state: "visible" });
}

/** Text of a visible element, trimmed; waits for the element first. */
async function text(selector) {
  const el = page.locator(selector);
  await el.waitFor({ state: "visible" });
  return (await el.innerText()).trim();
}

/** Polls `fn` until it returns a truthy value (or throws on timeout). */
async function eventually(fn, what, timeout = TIMEOUT) {
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

/** Opens a nav tab and waits for its table, "Nothing yet" text or an error. */
async function openTab(name, label) {
  await page.click(`nav button[data-tab="${name}"]`);
  const tab = page.locator(`#tab-${name}`);
  // Not waitFor("visible"): a tab that failed to load is empty, so it has no size.
  await eventually(() => tab.evaluate((el) => !el.hidden), `the ${name} tab to be shown`);
  await eventually(async () => {
    if ((await page.locator("#app-error").innerText()).trim()) return true;
    return (await tab.locator("h2").count()) > 0 && (await tab.locator("h2").innerText()).includes(label);
  }, `the ${name} tab to load`);
  return tab;
}

/** Rows of the first table in `tab` as arrays of cell texts, keyed by header. */
async function rows(tab) {
  const headers = (await tab.locator("table thead th").allInnerTexts()).map((s) => s.trim());
  const trs = tab.locator("table tbody tr");
  const out = [];
  for (let i = 0; i < (await trs.count()); i++) {
    const cells = (await trs.nth(i).locator("td").allInnerTexts()).map((s) => s.trim());
    out.push(Object.fromEntries(headers.map((h, j) => [h, cells[j]])));
  }
  return out;
}

/** Calls the staff API from the page with the signed-in session's access token. */
async function staffApi(method, path) {
  return page.evaluate(async ([method, path]) => {
    const s = JSON.parse(sessionStorage.getItem("pm.session"));
    const res = await fetch(`/v1/tenants/${encodeURIComponent(s.tenant)}/staff${path}`, {
      method, headers: { Authorization: "Bearer " + s.access_token },
    });
    return { status: res.status, body: await res.json().catch(() => null) };
  }, [method, path]);
}

async function shot(name) {
  const file = join(SHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

// --- tests ---------------------------------------------------------------------------

test("(a) the owner signs in and sees the mall, its members and its staff", async () => {
  await signIn(COFFEE.slug, OWNER, PASSWORD);
  assert.equal(await page.locator("#login-view").isVisible(), false, "sign-in form still shown");
  assert.equal(await text("#tenant-name"), COFFEE.name);
  assert.equal(await text("#my-role"), "owner");
  const who = await text("#who");
  assert.match(who, /owner@coffee\.demo/);
  assert.match(who, /owner/);
  assert.ok(who.includes(COFFEE.name), `header shows the mall: ${who}`);
  // The owner reads settings, so the overview shows the points configuration.
  assert.match(await text("#tab-overview"), /Points/);
  assert.equal(await text("#app-error"), "");
  await shot("owner-overview");

  const members = await openTab("members", "Members");
  assert.equal(await text("#app-error"), "");
  const phones = (await rows(members)).map((r) => r.Phone).sort();
  assert.deepEqual(phones, MEMBER_PHONES);
  assert.equal(await page.locator("#tab-overview").isVisible(), false, "only one tab is shown");
  await shot("owner-members");

  const staff = await openTab("staff", "Staff");
  assert.equal(await text("#app-error"), "");
  const staffRows = await rows(staff);
  const byEmail = Object.fromEntries(staffRows.map((r) => [r["E-mail"], r]));
  assert.ok(byEmail[OWNER], `owner listed: ${JSON.stringify(staffRows)}`);
  assert.ok(byEmail[OPERATOR], `operator listed: ${JSON.stringify(staffRows)}`);
  assert.equal(byEmail[OWNER].Role, "owner");
  assert.equal(byEmail[OPERATOR].Role, "operator");
  assert.equal(byEmail[OWNER].Status, "active");
  // Staff of the other mall never show up here.
  assert.ok(!staffRows.some((r) => r["E-mail"].endsWith("@books.demo")), "another mall's staff listed");
});

test("(b) the owner creates an API key; its secret is shown once", async () => {
  await signIn(COFFEE.slug, OWNER, PASSWORD);
  // Keys left behind by an interrupted earlier run count against the per-mall limit.
  const existing = await staffApi("GET", "/api-keys");
  assert.equal(existing.status, 200);
  for (const k of existing.body.filter((k) => k.name.startsWith("e2e key ") && !k.revoked_at)) {
    assert.equal((await staffApi("DELETE", `/api-keys/${k.id}`)).status, 200);
  }
  let tab = await openTab("keys", "Partner API keys");
  assert.equal(await text("#app-error"), "");

  const name = `e2e key ${Date.now()}`;
  await tab.locator('#key-form input[name="name"]').fill(name);
  await tab.locator('#key-form input[name="scopes"]').fill("members:read points:read");
  await tab.locator("#key-form button").click();

  const secretEl = page.locator("#key-secret .secret");
  await secretEl.waitFor({ state: "visible" });
  const secret = (await secretEl.innerText()).trim();
  assert.match(secret, /^pmk_[A-Za-z0-9_-]+$/);
  assert.match(await text("#key-secret"), /will not be shown again/);
  assert.equal(await text("#app-error"), "");
  // The list re-rendered with the new key in it.
  let listed = (await rows(tab)).find((r) => r.Name === name);
  assert.ok(listed, `new key listed right after creation`);
  assert.equal(listed.Scopes, "members:read points:read");
  assert.equal(listed.Status, "active");
  assert.ok(listed.Prefix, "the key's prefix is shown");
  assert.ok(secret.startsWith(`pmk_${listed.Prefix}_`), `secret ${secret} starts with pmk_${listed.Prefix}_`);
  assert.ok(listed.Prefix.length < secret.length / 2, "the listed prefix is not the secret");
  await shot("owner-api-key-created");

  // Reload the page (the session survives in sessionStorage) and reopen the tab.
  await page.reload();
  await page.locator("#tenant-name").waitFor({ state: "visible" });
  tab = await openTab("keys", "Partner API keys");
  assert.equal(await text("#app-error"), "");
  listed = (await rows(tab)).find((r) => r.Name === name);
  assert.ok(listed, "key still listed after reload");
  assert.equal(listed.Status, "active");
  assert.equal(await page.locator("#key-secret .secret").count(), 0, "secret box shown again");
  const html = await page.content();
  assert.ok(!html.includes(secret), "the secret appears in the page after reload");
  const secretTail = secret.slice(-16);
  assert.ok(!html.includes(secretTail), "part of the secret appears in the page after reload");

  // Clean up (the portal has no revoke button): revoke through the API, then the
  // portal lists the key as revoked.
  const key = (await staffApi("GET", "/api-keys")).body.find((k) => k.name === name);
  assert.ok(key, "the API lists the key");
  assert.equal(key.secret, undefined, "the API lists a secret");
  assert.equal((await staffApi("DELETE", `/api-keys/${key.id}`)).status, 200);
  tab = await openTab("keys", "Partner API keys");
  await eventually(async () => (await rows(tab)).find((r) => r.Name === name)?.Status === "revoked",
    "the key to show as revoked");
});

test("(c) a wrong password shows the API's error and stays on the sign-in form", async () => {
  await openPortal();
  // What the API says, so the test checks the portal passes it through verbatim.
  const api = await page.request.post(`${BASE_URL}/v1/tenants/${COFFEE.slug}/staff/auth/login`, {
    data: { email: OWNER, password: "not-the-password" },
  });
  assert.equal(api.status(), 401);
  const expected = (await api.json()).error.message;
  assert.ok(expected, "the API gives a message");

  await fillSignIn(COFFEE.slug, OWNER, "not-the-password");
  await eventually(async () => (await page.locator("#login-error").innerText()).trim(), "a sign-in error");
  assert.equal(await text("#login-error"), expected);
  assert.equal(await page.locator("#login-form").isVisible(), true);
  assert.equal(await page.locator("#app-view").isVisible(), false);
  assert.equal(await page.locator("#who").innerText(), "");
  assert.equal(await page.evaluate(() => sessionStorage.getItem("pm.session")), null, "a session was stored");
  await shot("wrong-password");
});

test("(d) the operator reads API keys but may not create one", async () => {
  // platform/src/rbac.rs: an operator has everything but staff_manage, api_keys_manage,
  // settings_write and finance_read; so api_keys_read is allowed, creating is not.
  await signIn(COFFEE.slug, OPERATOR, PASSWORD);
  assert.equal(await text("#my-role"), "operator");
  assert.equal(await text("#tenant-name"), COFFEE.name);
  const perms = await text("#tab-overview dl");
  assert.match(perms, /api_keys_read/);
  assert.doesNotMatch(perms, /api_keys_manage/);
  assert.doesNotMatch(perms, /staff_manage/);
  await shot("operator-overview");

  const tab = await openTab("keys", "Partner API keys");
  assert.equal(await text("#app-error"), "", "the operator may list keys");
  const before = (await rows(tab)).length;

  const name = `operator key ${Date.now()}`;
  await tab.locator('#key-form input[name="name"]').fill(name);
  await tab.locator("#key-form button").click();
  await eventually(async () => (await page.locator("#app-error").innerText()).trim(), "a permission error");
  assert.equal(await text("#app-error"), "the operator role lacks the api_keys_manage permission");
  assert.equal(await page.locator("#key-secret .secret").count(), 0, "a secret was shown");
  assert.ok(!(await rows(tab)).some((r) => r.Name === name), "the key was created anyway");
  assert.ok((await rows(tab)).length === before);
  await shot("operator-api-key-denied");

  // The operator can still read staff (staff_read) but not manage them.
  await openTab("staff", "Staff");
  assert.equal(await text("#app-error"), "");
});

test("(e) the owner of demo-coffee cannot sign in to demo-books", async () => {
  await openPortal();
  await fillSignIn(BOOKS.slug, OWNER, PASSWORD);
  await eventually(async () => (await page.locator("#login-error").innerText()).trim(), "a sign-in error");
  assert.match(await text("#login-error"), /wrong e-mail or password/);
  assert.equal(await page.locator("#app-view").isVisible(), false);
  assert.equal(await page.evaluate(() => sessionStorage.getItem("pm.session")), null);
  assert.ok(!(await page.content()).includes(BOOKS.name), "the other mall's name leaked");
});

test("(e2) a demo-coffee session pointed at demo-books is refused", async () => {
  // Signed in properly, then the session is re-addressed to the other mall: every call
  // carries a demo-coffee token to /v1/tenants/demo-books/..., which the API refuses.
  await signIn(COFFEE.slug, OWNER, PASSWORD);
  await page.evaluate((slug) => {
    const s = JSON.parse(sessionStorage.getItem("pm.session"));
    sessionStorage.setItem("pm.session", JSON.stringify({ ...s, tenant: slug }));
  }, BOOKS.slug);
  await page.reload();
  await eventually(async () => (await page.locator("#app-error").innerText()).trim(), "an error");
  assert.equal(await text("#app-error"), "this credential belongs to another mall");
  assert.ok(!(await page.content()).includes(BOOKS.name), "the other mall's name leaked");
  const members = await openTab("members", "Members");
  assert.equal(await text("#app-error"), "this credential belongs to another mall");
  assert.equal(await members.locator("table").count(), 0, "another mall's members listed");
});

test("(f) signing out returns to the sign-in form and ends the session", async () => {
  await signIn(COFFEE.slug, OWNER, PASSWORD);
  const { refresh_token } = await page.evaluate(() => JSON.parse(sessionStorage.getItem("pm.session")));
  assert.ok(refresh_token);
  await page.click("#logout");
  await page.locator("#login-form").waitFor({ state: "visible" });
  assert.equal(await page.locator("#app-view").isVisible(), false);
  assert.equal(await page.locator("#who").innerText(), "");
  assert.equal(await page.evaluate(() => sessionStorage.getItem("pm.session")), null);
  // The portal ends the session server-side (without awaiting it): the refresh token
  // soon stops working.
  await eventually(async () => {
    const r = await page.request.post(`${BASE_URL}/v1/tenants/${COFFEE.slug}/staff/auth/refresh`, {
      data: { refresh_token },
    });
    return r.status() === 401;
  }, "the refresh token to be revoked");
  await page.reload();
  await page.locator("#login-form").waitFor({ state: "visible" });
  assert.equal(await page.locator("#app-view").isVisible(), false, "signed in again after reload");
});

test("(g) pages carry the security headers; /docs renders Swagger UI under the CSP", async () => {
  const portal = await page.goto(`${BASE_URL}/portal/`);
  const headers = portal.headers();
  assert.match(headers["content-security-policy"], /frame-ancestors 'none'/);
  assert.match(headers["content-security-policy"], /script-src 'self'/);
  assert.equal(headers["x-frame-options"], "DENY");
  assert.equal(headers["x-content-type-options"], "nosniff");
  assert.equal(headers["referrer-policy"], "no-referrer");
  const docs = await page.goto(`${BASE_URL}/docs`);
  assert.equal(docs.status(), 200);
  assert.match(docs.headers()["content-security-policy"], /default-src 'none'/);
  await page.locator(".swagger-ui .info .title").waitFor({ state: "visible" });
  assert.match(await text(".swagger-ui .info .title"), /Points mall/);
  await eventually(async () => (await page.locator(".opblock").count()) > 10, "the operations to be listed");
  await page.screenshot({ path: join(SHOTS, "docs.png") });
});
