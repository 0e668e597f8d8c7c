// End-to-end tests of the back office (/portal/) in headless Chromium: the flows.
//
//   PORTAL_BASE_URL=http://127.0.0.1:18080 node --test admin-portal/e2e/
//
// Needs a running server over a database seeded with `pointsmall demo` (scripts/e2e.sh
// does all of that). Every test gets a fresh browser context. Screenshots go to
// target/portal-e2e/ (or PORTAL_SCREENSHOT_DIR).
import { test, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import {
  BASE_URL, COFFEE, BOOKS, OWNER, OPERATOR, PASSWORD, MEMBER_PHONES, ALLIANCE,
  PLATFORM, launch, open, signIn, signInAs, eventually, settled, menu, tableRows, pick, memberApi, shot, pngBytes, axe,
} from "./helpers.mjs";

let browser;
let ctx;

before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});
afterEach(async () => {
  const errors = ctx?.errors ?? [];
  await ctx?.context.close();
  ctx = null;
  assert.deepEqual(errors, [], "uncaught errors or CSP refusals in the page");
});

test("the owner signs in to the mall: menus, mall, members and staff", async () => {
  ctx = await open(browser);
  const { page } = ctx;
  await signIn(page, COFFEE.slug, OWNER);
  await page.locator('[data-test="page-dashboard"]').waitFor();
  assert.equal((await page.locator('[data-test="mall-name"]').innerText()).trim(), COFFEE.name);
  assert.match(await page.locator('[data-test="who"]').innerText(), /owner@coffee\.demo · 店主/);
  assert.deepEqual(await menu(page), ["dashboard", "products", "orders", "members", "messages", "tasks", "checkin", "lottery", "flash-sales", "content", "analytics", "finance", "rules", "staff", "api-keys", "webhooks", "audit-log", "settings"]);

  await page.click('[data-test="menu-members"]');
  await page.locator('[data-test="page-members"]').waitFor();
  await settled(page);
  const phones = (await page.locator('[data-test="member-phone"]').allInnerTexts()).map((s) => s.trim()).sort();
  assert.deepEqual(phones, MEMBER_PHONES);

  await page.click('[data-test="menu-staff"]');
  await page.locator('[data-test="page-staff"]').waitFor();
  await settled(page);
  const emails = await page.locator('[data-test="staff-email"]').allInnerTexts();
  assert.ok(emails.includes(OWNER) && emails.includes(OPERATOR), `staff listed: ${emails}`);
  assert.ok(!emails.some((e) => e.endsWith("@books.demo")), "another mall's staff listed");
});

test("create a product with an image; a member redeems it; the order is shipped in the portal", async () => {
  ctx = await open(browser);
  const { page } = ctx;
  await signIn(page, COFFEE.slug, OWNER);
  await page.click('[data-test="menu-products"]');
  await settled(page);

  // Create: listed and approved, 50 points, stock 5, one image.
  const name = `E2E 帆布包 ${Date.now()}`;
  await page.click('[data-test="product-create"]');
  const dialog = page.locator(".el-dialog", { has: page.locator('[data-test="pd-name"]') });
  await dialog.waitFor();
  await page.fill('[data-test="pd-name"]', name);
  await page.fill("#pd-points", "50");
  await page.fill("#pd-stock", "5");
  await dialog.getByText("上架", { exact: true }).click();
  await dialog.getByText("已审核", { exact: true }).click();
  await page.setInputFiles('[data-test="pd-image"]', { name: "bag.png", mimeType: "image/png", buffer: await pngBytes() });
  await eventually(async () => (await dialog.locator("img.thumb").count()) === 1, "the image preview");
  await shot(page, "flow-product-dialog");
  await page.click('[data-test="pd-save"]');
  await dialog.waitFor({ state: "hidden" });

  // The new product is in the table, with its image loaded, listed and approved.
  await page.fill('[data-test="products-search"]', name);
  await page.click('[data-test="products-search-submit"]');
  await eventually(async () => page.url().includes("q="), "the search in the URL");
  await settled(page);
  const row = page.locator('[data-test="products-table"] .el-table__body-wrapper tr', { hasText: name });
  await row.waitFor();
  assert.equal((await row.locator('[data-test="product-status"]').innerText()).trim(), "上架");
  assert.equal((await row.locator('[data-test="product-review"]').innerText()).trim(), "已审核");
  assert.equal((await row.locator('[data-test="product-points"]').innerText()).trim(), "50");
  const img = row.locator('[data-test="product-thumb"]');
  await eventually(() => img.evaluate((el) => el.complete && el.naturalWidth === 24), "the product image to load");
  const productId = Number((await row.locator("td").first().innerText()).trim());
  assert.ok(productId > 0);
  await shot(page, "flow-product-created");

  // A member redeems it through the API (with an address: it is a physical good).
  const member = await memberApi(page.request, COFFEE.slug);
  const addr = await member("POST", "/me/addresses", { name: "张三", phone: "13800000001", region: "上海市 浦东新区", detail: "世纪大道 1 号" });
  assert.equal(addr.status, 201, JSON.stringify(addr.body));
  const redeemed = await member("POST", "/me/redemptions", { product_id: productId, address_id: addr.body.id, quantity: 1 }, { "Idempotency-Key": `e2e-${Date.now()}` });
  assert.equal(redeemed.status, 201, JSON.stringify(redeemed.body));
  const order = redeemed.body.order ?? redeemed.body;
  assert.ok(order.order_no, JSON.stringify(redeemed.body));
  assert.equal(order.status, "pending_shipment");

  // The order is listed under 待发货; ship it with a carrier and a tracking number.
  await page.click('[data-test="menu-orders"]');
  await settled(page);
  await page.locator('[data-test="order-tabs"]').getByText("待发货", { exact: true }).click();
  await eventually(async () => page.url().includes("status=pending_shipment"), "the tab in the URL");
  await settled(page);
  const orderRow = page.locator('[data-test="orders-table"] .el-table__body-wrapper tr', { hasText: order.order_no });
  await orderRow.waitFor();
  await shot(page, "flow-order-listed");
  // The fixed actions column is drawn twice (scrolling and fixed copies): use the visible one.
  await page.locator('[data-test="orders-table"] .el-table__body-wrapper tr', { hasText: order.order_no }).locator('[data-test="order-ship"]:visible').first().click();
  const ship = page.locator(".el-dialog", { has: page.locator('[data-test="ship-tracking"]') });
  await ship.waitFor();
  // Field errors first: nothing filled in.
  await page.click('[data-test="ship-submit"]');
  await ship.getByText("请填写快递公司").waitFor();
  await pick(page, '[data-test="ship-carrier"]', "顺丰速运");
  await page.fill('[data-test="ship-tracking"]', "SF1234567890");
  await page.click('[data-test="ship-submit"]');
  await ship.waitFor({ state: "hidden" });

  // It left 待发货; under 已发货 it shows as shipped, and the detail drawer has the waybill.
  await page.locator('[data-test="order-tabs"]').getByText("已发货", { exact: true }).click();
  await settled(page);
  const shipped = page.locator('[data-test="orders-table"] .el-table__body-wrapper tr', { hasText: order.order_no }).first();
  await shipped.waitFor();
  assert.equal((await shipped.locator('[data-test="order-status"]').innerText()).trim(), "已发货");
  await shipped.locator('[data-test="order-open"]').click();
  await eventually(async () => page.url().includes(`order=${order.id}`), "the drawer in the URL");
  await page.locator('[data-test="drawer-carrier"]').waitFor();
  assert.equal((await page.locator('[data-test="drawer-carrier"]').innerText()).trim(), "顺丰速运");
  assert.equal((await page.locator('[data-test="drawer-tracking"]').innerText()).trim(), "SF1234567890");
  await shot(page, "flow-order-shipped");

  // The member sees it shipped.
  const mine = await member("GET", `/me/orders/${order.id}`);
  assert.equal(mine.status, 200, JSON.stringify(mine.body));
  assert.equal(mine.body.status, "shipped");
  assert.equal(mine.body.carrier, "顺丰速运");
  assert.equal(mine.body.tracking_no, "SF1234567890");

  // A deep link to the drawer survives a reload.
  await page.reload();
  await page.locator('[data-test="drawer-tracking"]').waitFor();
  assert.equal((await page.locator('[data-test="drawer-status"]').innerText()).trim(), "已发货");
});

test("a deep link with filters and a page survives a reload", async () => {
  ctx = await open(browser);
  const { page } = ctx;
  await signIn(page, COFFEE.slug, OWNER);
  const res = await page.goto(`${BASE_URL}/portal/products?status=listed&kind=physical`);
  assert.equal(res.status(), 200);
  assert.equal(res.headers()["cache-control"], "no-cache");
  await page.locator('[data-test="page-products"]').waitFor();
  await settled(page);
  const kinds = async () => (await tableRows(page, "products-table")).map((r) => r[2]);
  assert.ok((await kinds()).length > 0, "physical listed products shown");
  assert.ok((await kinds()).every((k) => k.includes("实物")), `only physical: ${await kinds()}`);
  await page.reload();
  await page.locator('[data-test="page-products"]').waitFor();
  await settled(page);
  assert.ok(page.url().endsWith("/portal/products?status=listed&kind=physical"), page.url());
  assert.ok((await kinds()).every((k) => k.includes("实物")));
  assert.equal(await page.locator('[data-test="filter-kind"] .el-select__selected-item:not(.is-hidden)').first().innerText(), "实物");

  // A page past the last one, by hand (no cursor in the URL): the portal walks the
  // pages and shows the last one there is (the demo has three members: page 1).
  await page.goto(`${BASE_URL}/portal/members?page=2`);
  await eventually(async () => !page.url().includes("page="), "the page to be corrected in the URL");
  await settled(page);
  assert.equal((await page.locator('[data-test="pager-page"]').innerText()).trim(), "第 1 页");
  assert.equal((await page.locator('[data-test="member-phone"]').allInnerTexts()).length, 3);
  // Hashed assets are cached for a year.
  const js = await page.evaluate(() => document.querySelector('script[type="module"]').src);
  const asset = await page.request.get(js);
  assert.equal(asset.status(), 200);
  assert.match(asset.headers()["cache-control"], /max-age=31536000, immutable/);
  assert.equal(asset.headers()["content-encoding"], "gzip");
});

test("a limited role sees only the screens it can use", async () => {
  ctx = await open(browser);
  const { page } = ctx;
  // The owner adds a finance account through the staff screen; a bad e-mail first
  // shows the API's 422 on its field.
  await signIn(page, COFFEE.slug, OWNER);
  await page.click('[data-test="menu-staff"]');
  await settled(page);
  await page.click('[data-test="staff-create"]');
  const dialog = page.locator(".el-dialog", { has: page.locator('[data-test="sf-email"]') });
  await dialog.waitFor();
  await page.fill('[data-test="sf-email"]', "not-an-email");
  await page.fill('[data-test="sf-password"]', "finance-pass-2026");
  await pick(page, '[data-test="sf-role"]', "财务");
  await page.click('[data-test="sf-save"]');
  const fieldError = dialog.locator(".el-form-item.is-error", { has: page.locator('[data-test="sf-email"]') }).locator(".el-form-item__error");
  await fieldError.waitFor();
  assert.match(await fieldError.innerText(), /e-mail/);
  await shot(page, "staff-422-on-field");
  const email = `finance-${Date.now()}@coffee.demo`;
  await page.fill('[data-test="sf-email"]', email);
  await page.click('[data-test="sf-save"]');
  await dialog.waitFor({ state: "hidden" });
  await eventually(async () => (await page.locator('[data-test="staff-email"]').allInnerTexts()).includes(email), "the new account listed");
  await page.click('[data-test="sign-out"]');
  await page.locator('[data-test="login-form"]').waitFor();

  await signIn(page, COFFEE.slug, email, "finance-pass-2026");
  // rbac.rs: finance reads settings, members, audit, finance, reports, catalog and orders
  // (the lottery and flash sales are catalog reads; check-in rewards are rules).
  assert.deepEqual(await menu(page), ["dashboard", "products", "orders", "members", "messages", "lottery", "flash-sales", "analytics", "finance", "audit-log", "settings"]);
  await page.click('[data-test="menu-products"]');
  await settled(page);
  assert.equal(await page.locator('[data-test="product-create"]').count(), 0, "finance may not create products");
  assert.equal(await page.locator('[data-test="product-edit"]').count(), 0, "finance may not edit products");
  await page.click('[data-test="menu-orders"]');
  await settled(page);
  assert.equal(await page.locator('[data-test="order-ship"]').count(), 0, "finance may not ship");
  await page.click('[data-test="menu-messages"]');
  await page.locator('[data-test="page-messages"]').waitFor();
  await settled(page);
  assert.equal(await page.locator('[data-test="broadcast-new"]').count(), 0, "finance may not write to members");
  // A screen it cannot use, by URL: refused, not shown.
  await page.goto(`${BASE_URL}/portal/api-keys`);
  await page.locator('[data-test="page-forbidden"]').waitFor();
  assert.equal(await page.locator('[data-test="page-api-keys"]').count(), 0);
  await shot(page, "finance-forbidden");

  // The operator reads API keys but cannot create one.
  await page.click('[data-test="sign-out"]');
  await signIn(page, COFFEE.slug, OPERATOR);
  assert.deepEqual(await menu(page), ["dashboard", "products", "orders", "members", "messages", "tasks", "checkin", "lottery", "flash-sales", "content", "analytics", "rules", "staff", "api-keys", "audit-log", "settings"]);
  await page.click('[data-test="menu-api-keys"]');
  await settled(page);
  assert.equal(await page.locator('[data-test="key-create"]').count(), 0);
  assert.equal(await page.locator('[data-test="staff-create"]').count(), 0);
});

test("an API key is created with scopes from the list, shown once and revoked", async () => {
  ctx = await open(browser);
  const { page } = ctx;
  await signIn(page, COFFEE.slug, OWNER);
  await page.click('[data-test="menu-api-keys"]');
  await settled(page);
  const name = `e2e key ${Date.now()}`;
  await page.click('[data-test="key-create"]');
  await page.fill('[data-test="kf-name"]', name);
  await page.locator('[data-test="kf-scope-orders:read"]').click();
  await page.click('[data-test="kf-save"]');
  const secret = (await page.locator('[data-test="key-secret"]').innerText()).trim();
  assert.match(secret, /^pmk_[A-Za-z0-9_-]+$/);
  await page.click('[data-test="secret-done"]');
  const row = page.locator('[data-test="keys-table"] .el-table__body-wrapper tr', { hasText: name }).first();
  await row.waitFor();
  assert.deepEqual((await row.locator('[data-test="key-scopes"]').innerText()).trim().split(" ").sort(), ["members:read", "orders:read", "points:read"]);
  assert.ok(secret.startsWith(`pmk_${(await row.locator('[data-test="key-prefix"]').innerText()).trim()}_`));
  assert.ok(!(await page.content()).includes(secret), "the secret stays in the page");
  // Revoke (confirmed); the key works until then and never after.
  const whoami = () => page.request.get(`${BASE_URL}/v1/tenants/${COFFEE.slug}/partner/whoami`, { headers: { "X-Api-Key": secret } });
  assert.equal((await whoami()).status(), 200);
  await page.locator('[data-test="keys-table"] .el-table__body-wrapper tr', { hasText: name }).locator('[data-test="key-revoke"]:visible').first().click();
  await page.locator(".el-message-box").getByRole("button", { name: "吊销" }).click();
  await eventually(async () => (await row.locator('[data-test="key-status"]').innerText()).trim() === "已吊销", "the key shown revoked");
  assert.equal((await whoami()).status(), 401);

  // The audit log names who did it (the account's e-mail, not `staff:3`) and what.
  await page.goto(`${BASE_URL}/portal/audit-log?area=api_key`);
  await settled(page);
  assert.equal((await page.locator('[data-test="audit-action"]').first().innerText()).trim(), "吊销 API 密钥");
  // Names come from the staff list, loaded beside the entries: the cell reads the e-mail
  // once it has arrived.
  const actorCell = page.locator('[data-test="audit-actor-cell"]').first();
  await eventually(async () => (await actorCell.innerText()).trim() === OWNER, `the actor shown as ${OWNER}`);
  assert.match(await page.locator('[data-test="audit-table"] .el-table__body-wrapper tr').first().innerText(), /^\d{4}\/\d{2}\/\d{2} \d{2}:\d{2}:\d{2}/);
});

test("a member's points are adjusted with a reason from the member drawer", async () => {
  ctx = await open(browser);
  const { page } = ctx;
  await signIn(page, COFFEE.slug, OWNER);
  await page.goto(`${BASE_URL}/portal/members?q=13800000002`);
  await settled(page);
  await page.locator('[data-test="member-open"]:visible').first().click();
  await page.locator('[data-test="drawer-phone"]').waitFor();
  const balance = page.locator('[data-test="balance-points"]');
  await balance.waitFor();
  const before = Number((await balance.innerText()).replace(/,/g, ""));
  // Without a reason: the field says so.
  await page.fill("#adjust-amount", "1234");
  await page.click('[data-test="adjust-submit"]');
  await page.locator('[data-test="adjust-form"] .el-form-item__error', { hasText: "请填写原因" }).waitFor();
  await page.fill('[data-test="adjust-reason"]', "e2e goodwill");
  await page.click('[data-test="adjust-submit"]');
  await eventually(async () => Number((await balance.innerText()).replace(/,/g, "")) === before + 1234, "the balance to grow by 1,234");
  assert.match(await balance.innerText(), /^\d{1,3}(,\d{3})+$|^\d{1,3}$/, "thousands separators");
  await page.locator('[data-test="entries"]', { hasText: "e2e goodwill" }).waitFor();
  await shot(page, "member-drawer-adjusted");
});

test("a rule: a syntax error marked at its line as you type, fixed, dry-run, published, diffed and rolled back; parameters too; archived and restored", async () => {
  ctx = await open(browser);
  const { page } = ctx;
  await signIn(page, COFFEE.slug, OWNER);
  await page.click('[data-test="menu-rules"]');
  await settled(page);
  await page.click('[data-test="rule-create"]');
  await page.locator('[data-test="page-rule"]').waitFor();
  const name = `e2e rule ${Date.now()}`;
  await page.fill('[data-test="rule-name"]', name);
  // CodeMirror, loaded on demand; the server compiles the text as it is typed.
  const editor = page.locator('[data-test="script-editor"] .cm-content');
  await editor.waitFor();
  await editor.fill('// e2e\nlet x = ;\n[award("points", params.points, "thanks")]\n');
  const marked = page.locator('[data-test="script-editor"] .cm-lineNumbers .script-editor__err');
  await eventually(async () => (await marked.count()) === 1 && (await marked.innerText()).trim() === "2", "line 2 marked as you type");
  assert.match(await page.locator('[data-test="script-check"]').innerText(), /2\D+\d+/, "the check names line and column");
  assert.equal(await page.locator('[data-test="script-editor"] .cm-lintRange-error').count(), 1, "the error underlined at its column");
  // Saving it anyway: the server refuses it with line and column; nothing is created.
  await page.click('[data-test="rule-save"]');
  await page.locator('[data-test="script-error"]').waitFor();
  assert.match(await page.locator('[data-test="script-error"]').innerText(), /line 2, column \d+/);
  assert.match(page.url(), /\/portal\/rules\/new$/, "nothing was created");
  await shot(page, "rule-compile-error");

  // Fixed: the mark goes, the check says it compiles.
  await editor.fill('// e2e\n[award("points", params.points, "thanks")]\n');
  await eventually(async () => (await marked.count()) === 0, "the mark cleared");
  await eventually(async () => (await page.locator('[data-test="script-check"]').innerText()).trim() !== "", "the check's answer");
  assert.doesNotMatch(await page.locator('[data-test="script-check"]').innerText(), /\d/, "no line or column: it compiles");
  await page.click('[data-test="rule-save"]');
  await eventually(async () => /\/portal\/rules\/\d+$/.test(page.url()), "the saved rule's URL");
  const id = Number(/\/rules\/(\d+)$/.exec(page.url())[1]);
  const rule = async () =>
    page.evaluate(
      async ([slug, id]) => {
        const s = JSON.parse(sessionStorage.getItem("pm.portal.session"));
        const res = await fetch(`/v1/tenants/${slug}/staff/rules/${id}`, { headers: { Authorization: `Bearer ${s.access_token}` } });
        return res.json();
      },
      [COFFEE.slug, id],
    );
  await page.locator('[data-test="versions-table"]').waitFor();

  // Dry run: the effects, and the event filled in as a live one (now, in the mall's zone).
  await page.click('[data-test="dry-run"]');
  const result = page.locator('[data-test="dry-result"]');
  await result.waitFor();
  assert.match(await result.innerText(), /points/);
  assert.match(await result.innerText(), /10/);
  const seen = JSON.parse(await page.locator('[data-test="dry-event-seen"]').textContent());
  assert.match(seen.occurred_at, /\+08:00$/, JSON.stringify(seen));
  assert.match(seen.day, /^\d{4}-\d{2}-\d{2}$/);

  // Publish version 2.
  await editor.fill('// e2e v2\n[award("points", params.points * 2, "thanks twice")]\n');
  await page.click('[data-test="rule-save"]');
  await eventually(async () => (await rule()).rule.current_version === 2, "version 2 is current");
  await eventually(async () => (await tableRows(page, "versions-table")).length === 2, "both versions listed");

  // The diff of version 1 against the current one, then a one-click rollback.
  await page.click('[data-test="diff-script-1"]');
  const diff = page.locator('[data-test="diff-view"]');
  await diff.locator(".cm-content").waitFor();
  await eventually(async () => (await diff.locator(".cm-deletedChunk").count()) >= 1, "the lines version 1 had, marked deleted");
  assert.match(await diff.innerText(), /thanks twice/);
  assert.match(await diff.locator(".cm-deletedChunk").first().innerText(), /"thanks"/);
  await shot(page, "rule-version-diff");
  await axe(page, "the rule editor with a version diff");
  await page.click('[data-test="diff-rollback"]');
  await eventually(async () => (await rule()).rule.current_version === 1, "rolled back to version 1");
  await eventually(async () => (await page.locator('[data-test="script-editor"] .cm-content').innerText()).includes('"thanks")'), "the editor shows version 1");

  // Parameters are versioned the same way.
  await page.fill('[data-test="rule-params"]', '{"points": 30}');
  await page.click('[data-test="params-save"]');
  await eventually(async () => (await rule()).rule.params_version === 2, "parameter version 2");
  await page.click('.el-tabs__item:has-text("参数")');
  await page.click('[data-test="diff-params-1"]');
  await eventually(async () => /30/.test(await diff.innerText()) && (await diff.locator(".cm-deletedChunk").count()) >= 1, "the parameters' diff");
  await page.click('[data-test="rollback-params-1"]');
  await eventually(async () => {
    const r = (await rule()).rule;
    return r.params_version === 1 && r.params.points === 10;
  }, "parameters rolled back to version 1");
  await eventually(async () => /v1\D+v1/.test(await page.locator('[data-test="rule-versions-now"]').innerText()), "the screen shows script v1, parameters v1");

  // What would it have cost? A backtest of the saved version over the last 30 days runs
  // on the server in the background; the screen shows its figures and lists it.
  await page.click('[data-test="backtest-run"]');
  const summary = page.locator('[data-test="backtest-summary"]');
  await summary.waitFor({ timeout: 60_000 });
  const backtests = await page.evaluate(
    async ([slug, id]) => {
      const s = JSON.parse(sessionStorage.getItem("pm.portal.session"));
      const res = await fetch(`/v1/tenants/${slug}/staff/rules/backtests?rule_id=${id}`, { headers: { Authorization: `Bearer ${s.access_token}` } });
      return res.json();
    },
    [COFFEE.slug, id],
  );
  assert.equal(backtests.length, 1, JSON.stringify(backtests));
  assert.equal(backtests[0].status, "done", JSON.stringify(backtests[0]));
  assert.ok((await summary.innerText()).startsWith(`共重放 ${backtests[0].result.events.replayed.toLocaleString("en-US")} 个事件`), await summary.innerText());
  await eventually(async () => (await tableRows(page, "backtest-history")).length === 1, "the backtest listed for the rule");
  await shot(page, "rule-backtest");

  // Archived from the list: gone from the active ones, listed with the archived, restored.
  await page.click('[data-test="menu-rules"]');
  await settled(page);
  const row = page.locator('[data-test="rules-table"] .el-table__row', { hasText: name });
  await row.locator('[data-test="rule-archive-row"]').click();
  await page.locator(".el-message-box").getByRole("button", { name: "归档" }).click();
  await eventually(async () => (await rule()).rule.archived_at !== null, "archived");
  await eventually(async () => (await row.count()) === 0, "gone from the active list");
  await page.click('[data-test="rules-archived"]');
  await eventually(async () => /archived=1/.test(page.url()) && (await row.count()) === 1, "listed with the archived rules");
  await row.locator('[data-test="rule-restore-row"]').click();
  await eventually(async () => (await rule()).rule.archived_at === null, "restored");
});

test("a wrong password shows the API's error and stays on the sign-in form", async () => {
  ctx = await open(browser);
  const { page } = ctx;
  const api = await page.request.post(`${BASE_URL}/v1/tenants/${COFFEE.slug}/staff/auth/login`, { data: { email: OWNER, password: "not-the-password" } });
  assert.equal(api.status(), 401);
  const expected = (await api.json()).error.message;
  await page.goto(`${BASE_URL}/portal/`);
  await page.fill("#login-scope", COFFEE.slug);
  await page.fill("#login-email", OWNER);
  await page.fill("#login-password", "not-the-password");
  await page.click('[data-test="login-submit"]');
  await eventually(async () => (await page.locator('[data-test="login-error"]').innerText()).trim() === expected, "the API's message");
  assert.equal(await page.evaluate(() => sessionStorage.getItem("pm.portal.session")), null);
  // The owner of demo-coffee is nobody at demo-books.
  await page.fill("#login-scope", BOOKS.slug);
  await page.fill("#login-password", PASSWORD);
  await page.click('[data-test="login-submit"]');
  // The API answers in the browser's language (Accept-Language: zh-CN).
  await eventually(async () => /账号或密码错误/.test(await page.locator('[data-test="login-error"]').innerText()), "a sign-in error");
  assert.ok(!(await page.content()).includes(BOOKS.name));
});

test("a demo-coffee session pointed at demo-books is refused and shows nothing of it", async () => {
  ctx = await open(browser);
  const { page } = ctx;
  await signIn(page, COFFEE.slug, OWNER);
  await page.evaluate((slug) => {
    const s = JSON.parse(sessionStorage.getItem("pm.portal.session"));
    sessionStorage.setItem("pm.portal.session", JSON.stringify({ ...s, scope: slug }));
  }, BOOKS.slug);
  await page.goto(`${BASE_URL}/portal/members`);
  await page.locator('[data-test="me-error"]').waitFor();
  assert.match(await page.locator('[data-test="me-error"]').innerText(), /该凭证属于其他商城/); // Accept-Language: zh-CN
  assert.deepEqual(await menu(page), []);
  assert.equal(await page.locator('[data-test="page-members"]').count(), 0);
  assert.ok(!(await page.content()).includes(BOOKS.name));
});

test("signing out ends the session on the server too", async () => {
  ctx = await open(browser);
  const { page } = ctx;
  await signIn(page, COFFEE.slug, OWNER);
  const { refresh_token } = await page.evaluate(() => JSON.parse(sessionStorage.getItem("pm.portal.session")));
  await page.click('[data-test="sign-out"]');
  await page.locator('[data-test="login-form"]').waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem("pm.portal.session")), null);
  await eventually(async () => {
    const r = await page.request.post(`${BASE_URL}/v1/tenants/${COFFEE.slug}/staff/auth/refresh`, { data: { refresh_token } });
    return r.status() === 401;
  }, "the refresh token to be revoked");
  await page.goto(`${BASE_URL}/portal/orders`);
  await page.locator('[data-test="login-form"]').waitFor();
  assert.match(page.url(), /\/portal\/login\?redirect=/);
});

test("an expired access token is refreshed once and the screen loads", async () => {
  ctx = await open(browser);
  const { page } = ctx;
  await signIn(page, COFFEE.slug, OWNER);
  await page.evaluate(() => {
    const s = JSON.parse(sessionStorage.getItem("pm.portal.session"));
    sessionStorage.setItem("pm.portal.session", JSON.stringify({ ...s, access_token: "expired.or.forged" }));
  });
  await page.goto(`${BASE_URL}/portal/staff`);
  await settled(page);
  await eventually(async () => (await page.locator('[data-test="staff-email"]').allInnerTexts()).includes(OWNER), "the staff list after a refresh");
  const s = await page.evaluate(() => JSON.parse(sessionStorage.getItem("pm.portal.session")));
  assert.notEqual(s.access_token, "expired.or.forged");
});

test("pages carry the security headers; /docs renders Swagger UI under the CSP", async () => {
  ctx = await open(browser);
  const { page } = ctx;
  const portal = await page.goto(`${BASE_URL}/portal/`);
  const h = portal.headers();
  assert.match(h["content-security-policy"], /frame-ancestors 'none'/);
  assert.match(h["content-security-policy"], /script-src 'self'/);
  assert.equal(h["x-frame-options"], "DENY");
  assert.equal(h["x-content-type-options"], "nosniff");
  const docs = await page.goto(`${BASE_URL}/docs`);
  assert.equal(docs.status(), 200);
  await page.locator(".swagger-ui .info .title").waitFor();
  // Tags start folded; opened, each lists its operations.
  for (const tag of ["members", "staff", "alliance"]) await page.locator(`#operations-tag-${tag}`).click();
  await eventually(async () => (await page.locator(".opblock").count()) > 50, "the operations of three tags to be listed");
});

/** `¥-16.00` / `¥1,234.50` → fen. */
const fen = (text) => Math.round(Number(text.replace(/[¥,\s]/g, "")) * 100);
const num = (text) => Number(text.replace(/[,\s]/g, ""));

test("the alliance admin reads member counts, writes an alliance rule in the rule editor (marker, fix, dry run with the budget charge, save), archives it, and removes a mall the operator then sees gone", async () => {
  // The operator adds a mall to the alliance for this test to remove.
  ctx = await open(browser);
  let page = ctx.page;
  await signInAs(page, "platform", { email: PLATFORM.email, password: PLATFORM.password });
  const leaver = `e2e-leave-${Date.now() % 1_000_000}`;
  const made = await page.evaluate(
    async ([slug, alliance]) => {
      const s = JSON.parse(sessionStorage.getItem("pm.portal.session"));
      const res = await fetch("/v1/platform/tenants", {
        method: "POST",
        headers: { Authorization: `Bearer ${s.access_token}`, "Content-Type": "application/json" },
        body: JSON.stringify({ slug, name: `E2E 退出店 ${slug}`, alliance }),
      });
      return res.status;
    },
    [leaver, ALLIANCE.slug],
  );
  assert.equal(made, 201);
  assert.deepEqual(ctx.errors, []);
  await ctx.context.close();

  ctx = await open(browser);
  page = ctx.page;
  await signInAs(page, "alliance", { scope: ALLIANCE.slug, email: ALLIANCE.email, password: ALLIANCE.password });
  // The overview counts each mall's members shared with the alliance, no personal data.
  await page.locator('[data-test="alliance-member-counts"]').waitFor();
  await settled(page);
  const counts = await tableRows(page, "alliance-member-counts");
  assert.ok(counts.some((r) => r[0] === COFFEE.slug), `${JSON.stringify(counts)}`);
  assert.ok(!(await page.locator('[data-test="page-alliance"]').innerText()).includes(MEMBER_PHONES[0]), "no member's phone");

  // The mall's rule editor, on the alliance's calls.
  await page.click('[data-test="menu-alliance-rules"]');
  await settled(page);
  await page.click('[data-test="rule-create"]');
  await page.locator('[data-test="page-alliance-rule"]').waitFor();
  const name = `e2e 联盟注册礼 ${Date.now()}`;
  await page.fill('[data-test="rule-name"]', name);
  const editor = page.locator('[data-test="script-editor"] .cm-content');
  await editor.waitFor();
  // A syntax error is marked at its line as it is typed.
  await editor.fill('// e2e\nlet x = ;\n[award("alliance_points", params.bonus, "welcome")]\n');
  const marked = page.locator('[data-test="script-editor"] .cm-lineNumbers .script-editor__err');
  await eventually(async () => (await marked.count()) === 1 && (await marked.innerText()).trim() === "2", "line 2 marked as you type");
  assert.match(await page.locator('[data-test="script-check"]').innerText(), /2\D+\d+/, "the check names line and column");
  await shot(page, "alliance-rule-compile-error");
  // A mall's own currency compiles but is refused for an alliance rule, as it is typed.
  await editor.fill('[award("points", 5)]\n');
  await eventually(async () => /alliance_points/.test(await page.locator('[data-test="script-check"]').innerText()), "the shared-currency limit told as you type");
  // Fixed: the mark goes, the check says it compiles.
  await editor.fill('// e2e\n[award("alliance_points", params.bonus, "welcome")]\n');
  await page.fill('[data-test="rule-params"]', '{"bonus": 20}');
  await eventually(async () => (await marked.count()) === 0, "the mark cleared");
  await eventually(async () => (await page.locator('[data-test="script-check"]').innerText()).trim() !== "", "the check's answer");
  assert.doesNotMatch(await page.locator('[data-test="script-check"]').innerText(), /\d/, "no line or column: it compiles");
  // Dry run in a mall of the alliance: the effects and the mall's budget charge.
  await page.locator('[data-test="dry-mall"]').waitFor();
  await page.click('[data-test="dry-run"]');
  const result = page.locator('[data-test="dry-result"]');
  await result.waitFor();
  assert.match(await result.innerText(), /alliance_points/);
  await page.locator('[data-test="dry-budget"]').waitFor();
  assert.equal((await page.locator('[data-test="dry-budget-points"]').innerText()).trim().replace(/,/g, "") === "20" ||
    (await page.locator('[data-test="dry-award-budget_exhausted"]').count()) === 1, true, "charged, or left out by an empty budget");
  await axe(page, "the alliance rule editor with a dry run");
  await shot(page, "alliance-rule-dry-run");
  await page.click('[data-test="rule-save"]');
  await eventually(async () => /\/portal\/alliance\/rules\/\d+$/.test(page.url()), "the saved rule's URL");
  await page.locator('[data-test="versions-table"]').waitFor();

  // Back to the list: archived, it moves to the archived tab.
  await page.click('[data-test="menu-alliance-rules"]');
  await settled(page);
  const row = page.locator('[data-test="rules-table"] .el-table__body-wrapper tr', { hasText: name }).first();
  await row.waitFor();
  await row.locator('[data-test="rule-archive-row"]').click();
  await page.locator(".el-message-box").getByRole("button", { name: "归档" }).click();
  await row.waitFor({ state: "detached" });
  await page.click('[data-test="rules-archived"]');
  await page.locator('[data-test="rules-table"] .el-table__body-wrapper tr', { hasText: name }).first().waitFor();
  await shot(page, "alliance-rules");

  // Remove the new mall from the alliance: the slug typed again.
  await page.click('[data-test="menu-alliance"]');
  await page.locator('[data-test="alliance-merchants"]').waitFor();
  await settled(page);
  await page.click(`[data-test="leave-${leaver}"]`);
  const dialog = page.locator('[data-test="leave-dialog"]');
  await dialog.waitFor();
  assert.match(await dialog.innerText(), /下架/);
  assert.ok(await page.locator('[data-test="leave-submit"]').isDisabled(), "not before the slug is typed");
  // The dialog's opening transition done before contrast is measured.
  await page.waitForTimeout(400);
  await axe(page, "the remove-from-alliance dialog");
  await page.fill('[data-test="leave-confirm"]', leaver);
  await eventually(async () => page.locator('[data-test="leave-submit"]').isEnabled(), "enabled once the slug is typed");
  await shot(page, "alliance-remove-mall");
  await page.click('[data-test="leave-submit"]');
  await eventually(async () => !(await tableRows(page, "alliance-merchants")).some((r) => r[1] === leaver), "the mall gone from the merchants");
  await eventually(async () => (await tableRows(page, "alliance-departed")).some((r) => r[0] === leaver), "the mall listed as departed");
  assert.deepEqual(ctx.errors, []);
  await ctx.context.close();

  // The operator's Alliances screen no longer lists it in the alliance.
  ctx = await open(browser);
  page = ctx.page;
  await signInAs(page, "platform", { email: PLATFORM.email, password: PLATFORM.password });
  await page.click('[data-test="menu-platform-alliances"]');
  await settled(page);
  const alliance = page.locator('[data-test="alliances-table"] .el-table__body-wrapper tr', { hasText: ALLIANCE.slug }).first();
  await alliance.locator(".el-table__expand-icon").click();
  const malls = page.locator(`[data-test="alliance-malls-${ALLIANCE.slug}"]`);
  await malls.waitFor();
  await eventually(async () => (await malls.innerText()).includes(COFFEE.slug), "the alliance's malls listed");
  assert.ok(!(await malls.innerText()).includes(leaver), "the removed mall is gone");
  assert.equal(await malls.locator(`[data-test="leave-${COFFEE.slug}"]`).count(), 1, "each mall has a remove button");
  await axe(page, "the operator's alliances with their malls");
  await shot(page, "platform-alliance-malls");
});

test("the alliance admin tops up a mall's budget and reads the month's settlement down to its entries", async () => {
  ctx = await open(browser);
  const { page } = ctx;
  await signInAs(page, "alliance", { scope: ALLIANCE.slug, email: ALLIANCE.email, password: ALLIANCE.password });
  assert.deepEqual(await menu(page), ["alliance", "alliance-budgets", "alliance-settlement", "alliance-rules", "alliance-webhooks"]);

  // Budgets: a top-up of ¥50 shows in the mall's balance.
  await page.click('[data-test="menu-alliance-budgets"]');
  await settled(page);
  const row = page.locator('[data-test="budgets-table"] .el-table__body-wrapper tr', { hasText: COFFEE.slug }).first();
  const balance = row.locator('[data-test="budget-balance"]');
  await balance.waitFor();
  const before = fen(await balance.innerText());
  await row.locator('[data-test="budget-top-up"]:visible').first().click();
  await page.fill('[data-test="top-up-amount"] input', "50");
  await page.fill('[data-test="top-up-memo"]', "e2e top-up");
  await page.click('[data-test="budget-submit"]');
  await eventually(async () => fen(await balance.innerText()) === before + 5_000, "the balance to grow by ¥50");

  // Settlement: this month's preview; nets sum to zero; a figure drills down to entries
  // adding up to it; an open month cannot be closed yet.
  await page.click('[data-test="menu-alliance-settlement"]');
  await settled(page);
  assert.equal((await page.locator('[data-test="settlement-state"]').innerText()).trim(), "预览（未关闭）");
  const lines = await tableRows(page, "settlement-lines");
  const malls = lines.map((r) => r[0]);
  assert.ok(malls.includes(COFFEE.slug) && malls.includes(BOOKS.slug), `${malls}`);
  const nets = await page.locator('[data-test="line-net"]').allInnerTexts();
  assert.equal(nets.map(fen).reduce((a, b) => a + b, 0), 0, `nets ${nets}`);
  const issued = page.locator('[data-test="line-issued"]');
  const counts = (await issued.allInnerTexts()).map(num);
  const at = counts.findIndex((n) => n > 0);
  assert.ok(at >= 0, `the demo issued shared points this month: ${counts}`);
  await issued.nth(at).click();
  const dialog = page.locator('[data-test="drill-dialog"]');
  await dialog.waitFor();
  await settled(page);
  const entries = await tableRows(page, "drill-table");
  assert.ok(entries.length > 0);
  assert.equal(entries.map((r) => num(r[2])).reduce((a, b) => a + b, 0), counts[at], "the entries add up to the figure");
  await shot(page, "settlement-drill");
  await page.keyboard.press("Escape");
  await page.click('[data-test="settlement-close"]');
  await page.locator(".el-message-box").getByRole("button", { name: "关闭结算周期" }).click();
  await page.locator(".el-message", { hasText: "尚未结束" }).waitFor();
});

test("staff tag a member, save the tag as a segment, export it and write it a message the member reads", async () => {
  ctx = await open(browser);
  const { page } = ctx;
  const tag = `e2e-tea-${Date.now() % 1_000_000}`;
  await signIn(page, COFFEE.slug, OWNER);

  // The member record lists tags; one is added from the drawer.
  await page.goto(`${BASE_URL}/portal/members?q=${MEMBER_PHONES[0]}`);
  await settled(page);
  await page.locator('[data-test="member-open"]:visible').first().click();
  await page.locator('[data-test="drawer-phone"]').waitFor();
  await page.fill('[data-test="member-tag-input"]', tag);
  await page.click('[data-test="member-tag-add"]');
  await page.locator('[data-test="member-tag"]', { hasText: tag }).waitFor();
  // The profile fields rules read: staff set the city; the record shows it.
  const city = `杭州${Date.now() % 1000}`;
  await page.fill('[data-test="profile-city"]', city);
  await page.click('[data-test="profile-save"]');
  await page.locator('[data-test="drawer-city"]', { hasText: city }).waitFor();

  // Filtered by the tag: one member; saved as a segment, the URL names the segment.
  await page.goto(`${BASE_URL}/portal/members?tag=${tag}`);
  await settled(page);
  await eventually(async () => (await page.locator('[data-test="members-count"]').innerText()).includes("共 1 位会员"), "the count of one member");
  await page.click('[data-test="segment-save"]');
  await page.locator(".el-message-box input").fill(`茶客 ${tag}`);
  await page.locator(".el-message-box").getByRole("button", { name: "保存" }).click();
  await eventually(async () => /[?&]segment=\d+/.test(page.url()), "the saved segment in the URL");
  const rows = await tableRows(page, "members-table");
  assert.equal(rows.length, 1);
  assert.ok(rows[0].some((c) => c === MEMBER_PHONES[0]), `the tagged member: ${rows[0]}`);

  // The export is the segment's members, with the tag.
  const [file] = await Promise.all([page.waitForEvent("download"), page.click('[data-test="members-export"]')]);
  const { readFile } = await import("node:fs/promises");
  const csv = await readFile(await file.path(), "utf8");
  assert.ok(csv.startsWith("\ufeff\"member_id\""), csv.slice(0, 80));
  assert.equal(csv.trim().split("\n").length, 2, csv);
  assert.ok(csv.includes(tag) && csv.includes(MEMBER_PHONES[0]), csv);

  // A message to the segment goes out now, to that one member.
  await page.goto(`${BASE_URL}/portal/messages`);
  await settled(page);
  await page.click('[data-test="broadcast-new"]');
  await page.fill('[data-test="broadcast-title"]', `新品上架 ${tag}`);
  await page.fill('[data-test="broadcast-body"]', "本周新品八折");
  await pick(page, '[data-test="broadcast-segment"]', `茶客 ${tag}`);
  await page.click('[data-test="broadcast-submit"]');
  const row = page.locator('[data-test="broadcasts-table"] tbody tr', { hasText: `新品上架 ${tag}` });
  await row.locator('[data-test="broadcast-status"]', { hasText: "已发送" }).waitFor();
  assert.equal(await row.locator('[data-test="broadcast-recipients"]').innerText(), "1");

  // The member sees it unread, reads it; the read count follows.
  const member = await memberApi(page.request, COFFEE.slug);
  const inbox = await member("GET", "/me/messages");
  const msg = inbox.body.items.find((m) => m.title === `新品上架 ${tag}`);
  assert.ok(msg && msg.read_at === null, JSON.stringify(inbox.body.items.slice(0, 3)));
  assert.ok((await member("GET", "/me/messages/unread")).body.unread >= 1);
  assert.equal((await member("POST", `/me/messages/${msg.id}/read`)).status, 200);
  await page.reload();
  await settled(page);
  await eventually(async () => (await row.innerText()).includes("1 (100%)"), "one read of one");
  await shot(page, "messages-sent");
});

test("the owner defines a daily task; a member's share completes it and the completions count", async () => {
  ctx = await open(browser);
  const { page } = ctx;
  const name = `每日分享 ${Date.now() % 1_000_000}`;
  await signIn(page, COFFEE.slug, OWNER);
  await page.goto(`${BASE_URL}/portal/tasks`);
  await settled(page);
  await page.click('[data-test="task-new"]');
  await page.fill('[data-test="task-name"]', name);
  await pick(page, '[data-test="task-event"]', "分享 (shared)");
  await page.locator('[data-test="task-dialog"] .el-radio', { hasText: "每日" }).click();
  await page.fill('[data-test="task-reward"] input', "15");
  await page.click('[data-test="task-save"]');
  await page.locator('[data-test="task-dialog"]').waitFor({ state: "hidden" });
  const row = page.locator('[data-test="tasks-table"] tbody tr', { hasText: name });
  await row.locator('[data-test="task-status"]', { hasText: "进行中" }).waitFor();
  assert.equal(await row.locator('[data-test="task-completions"]').innerText(), "0");

  // The member sees it, shares from the app, and it is done.
  const member = await memberApi(page.request, COFFEE.slug);
  const mine = (await member("GET", "/me/tasks")).body.find((x) => x.name === name);
  assert.ok(mine && mine.completed === false && mine.target === 1, JSON.stringify(mine));
  const sent = await member("POST", "/me/events", { id: `e2e-${Date.now()}`, type: "shared" });
  assert.equal(sent.status, 200, JSON.stringify(sent.body));
  const after = (await member("GET", "/me/tasks")).body.find((x) => x.name === name);
  assert.equal(after.completed, true, JSON.stringify(after));
  await page.reload();
  await settled(page);
  await eventually(async () => (await row.locator('[data-test="task-completions"]').innerText()) === "1", "one completion");
  await shot(page, "tasks");
});

test("an operator writes a banner and a rule page, the owner publishes them, and the member API returns them", async () => {
  ctx = await open(browser);
  const { page } = ctx;
  const stamp = Date.now() % 1_000_000;
  const bannerTitle = `E2E 春季大促 ${stamp}`;
  const pageKey = `e2e-rules-${stamp}`;

  // The operator writes and submits; publishing is not theirs.
  await signIn(page, COFFEE.slug, OPERATOR);
  await page.goto(`${BASE_URL}/portal/content?kind=banner`);
  await settled(page);
  await page.click('[data-test="content-new"]');
  const dialog = page.locator('[data-test="content-dialog"]');
  await page.fill('[data-test="content-title-input"]', bannerTitle);
  await page.fill('[data-test="content-link"]', "/products");
  await page.setInputFiles('[data-test="content-image"]', { name: "banner.png", mimeType: "image/png", buffer: await pngBytes() });
  await page.click('[data-test="content-save"]');
  await dialog.waitFor({ state: "hidden" });
  const bannerRow = page.locator('[data-test="content-table"] .el-table__body-wrapper tr', { hasText: bannerTitle });
  await bannerRow.locator('[data-test="content-state"]', { hasText: "草稿" }).waitFor();
  await eventually(() => bannerRow.locator("img.content-thumb").evaluate((el) => el.complete && el.naturalWidth === 24), "the banner's image");
  await bannerRow.locator('[data-test="content-submit"]').click();
  await bannerRow.locator('[data-test="content-state"]', { hasText: "待审核" }).waitFor();
  assert.equal(await bannerRow.locator('[data-test="content-approve"]').count(), 0, "an operator does not publish");

  // A rule page in Markdown, with a preview rendered (and sanitised) by the server.
  await page.goto(`${BASE_URL}/portal/content?kind=page`);
  await settled(page);
  await page.click('[data-test="content-new"]');
  await page.fill('[data-test="content-title-input"]', "积分规则");
  await page.fill('[data-test="content-key"]', pageKey);
  await page.fill('[data-test="content-body"]', "# 积分规则\n\n每消费 **1 元** 得 1 积分。<script>alert(1)</script>");
  await page.click('[data-test="content-preview"]');
  const preview = page.locator('[data-test="content-preview-html"]');
  await preview.locator("h1", { hasText: "积分规则" }).waitFor();
  assert.equal(await preview.locator("script").count(), 0);
  await shot(page, "content-page-dialog");
  await page.click('[data-test="content-save"]');
  await dialog.waitFor({ state: "hidden" });
  const pageRow = page.locator('[data-test="content-table"] .el-table__body-wrapper tr', { hasText: pageKey });
  await pageRow.locator('[data-test="content-submit"]').click();
  await pageRow.locator('[data-test="content-state"]', { hasText: "待审核" }).waitFor();

  // Members see nothing yet.
  const member = await memberApi(page.request, COFFEE.slug);
  assert.equal((await member("GET", `/content/pages/${pageKey}`)).status, 404);

  // The owner publishes both.
  await page.click('[data-test="sign-out"]');
  await signIn(page, COFFEE.slug, OWNER);
  for (const [kind, text] of [["banner", bannerTitle], ["page", pageKey]]) {
    await page.goto(`${BASE_URL}/portal/content?kind=${kind}`);
    await settled(page);
    const row = page.locator('[data-test="content-table"] .el-table__body-wrapper tr', { hasText: text });
    await row.locator('[data-test="content-approve"]').click();
    await row.locator('[data-test="content-state"]', { hasText: "已发布" }).waitFor();
  }
  await shot(page, "content");

  // The member API returns them at once.
  const banners = await member("GET", "/content/banners");
  assert.equal(banners.status, 200, JSON.stringify(banners.body));
  const banner = banners.body.find((b) => b.title === bannerTitle);
  assert.ok(banner && banner.link === "/products" && banner.image_url.includes("/files/content/"), JSON.stringify(banners.body));
  const image = await page.request.get(`${BASE_URL}${banner.image_url}`);
  assert.equal(image.status(), 200);
  const rules = await member("GET", `/content/pages/${pageKey}`);
  assert.equal(rules.status, 200, JSON.stringify(rules.body));
  assert.ok(rules.body.html.includes("<strong>1 元</strong>") && !rules.body.html.includes("<script"), rules.body.html);
});

test("the owner adds a webhook endpoint, reads its secret once, and a test event arrives signed and shows as delivered", async () => {
  // A receiver on this machine (the e2e server allows private addresses).
  const { createServer } = await import("node:http");
  const { createHmac } = await import("node:crypto");
  const received = [];
  const receiver = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      received.push({ headers: req.headers, body });
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("ok");
    });
  });
  await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${receiver.address().port}/hooks/${Date.now() % 1_000_000}`;
  try {
    ctx = await open(browser);
    const { page } = ctx;
    await signIn(page, COFFEE.slug, OWNER);
    await page.goto(`${BASE_URL}/portal/webhooks`);
    await settled(page);
    await page.click('[data-test="webhook-new"]');
    await page.fill('[data-test="webhook-url-input"]', url);
    // No event chosen: the API's field error shows on the field.
    await page.click('[data-test="webhook-save"]');
    await page.locator('[data-test="webhook-dialog"] .el-form-item__error').waitFor();
    await page.locator('[data-test="webhook-dialog"] .el-checkbox', { hasText: "订单状态变化" }).click();
    await page.click('[data-test="webhook-save"]');
    const secret = await page.locator('[data-test="webhook-secret"]').innerText();
    assert.match(secret, /^whsec_[A-Za-z0-9+/]+=*$/);
    await page.click('[data-test="webhook-secret-done"]');
    const row = page.locator('[data-test="webhooks-table"] tbody tr', { hasText: url });
    await row.locator('[data-test="webhook-state"]', { hasText: "已启用" }).waitFor();

    // A test event: delivered, signed with that secret, and listed as delivered.
    await row.locator('[data-test="webhook-test"]').click();
    await eventually(async () => received.length > 0, "the test event at the receiver");
    const { headers, body } = received[0];
    const expected = createHmac("sha256", Buffer.from(secret.slice("whsec_".length), "base64"))
      .update(`${headers["webhook-id"]}.${headers["webhook-timestamp"]}.${body}`)
      .digest("base64");
    assert.ok(headers["webhook-signature"].split(" ").includes(`v1,${expected}`), `signature ${headers["webhook-signature"]}`);
    assert.equal(JSON.parse(body).type, "webhook.test");
    await row.locator('[data-test="webhook-log"]').click();
    await eventually(async () => {
      await page.click('[data-test="webhook-log-reload"]');
      const rows = await tableRows(page, "deliveries-table");
      return rows.some((r) => r[0] === "webhook.test" && r[1] === "已送达");
    }, "the delivery listed as delivered");
    await shot(page, "webhook-log");
    await page.keyboard.press("Escape");

    // Turned off, then deleted after a confirmation.
    await row.locator('[data-test="webhook-toggle"]').click();
    await row.locator('[data-test="webhook-state"]', { hasText: "已停用" }).waitFor();
    await row.locator('[data-test="webhook-delete"]').click();
    await page.locator(".el-message-box").getByRole("button", { name: "确定" }).click();
    await row.waitFor({ state: "detached" });
  } finally {
    receiver.close();
  }
});

test("the platform operator reads the one-time code a member was sent (no SMS gateway here)", async () => {
  ctx = await open(browser);
  const { page } = ctx;
  const phone = `139${String(Date.now() % 100_000_000).padStart(8, "0")}`;
  const sent = await page.request.post(`${BASE_URL}/v1/tenants/${COFFEE.slug}/auth/codes`, { data: { identifier: phone, purpose: "register" } });
  assert.equal(sent.status(), 202, await sent.text());
  await signInAs(page, "platform", { email: PLATFORM.email, password: PLATFORM.password });
  await page.locator('[data-test="page-tenants"]').waitFor();
  await page.click('[data-test="menu-platform-recorded-messages"]');
  await page.fill('[data-test="recorded-to"]', phone);
  await page.click('[data-test="recorded-search"]');
  await eventually(async () => {
    const rows = await tableRows(page, "recorded-table");
    return rows.length === 1 && rows[0][2] === `+86${phone}` && /\b\d{6}\b/.test(rows[0][3]);
  }, "the code message to that phone");
  await shot(page, "recorded-messages");
});

/** "1,234" → 1234; "+12" / "-5" keep their sign. */
const points = (s) => Number(s.replace(/[,+\s]/g, ""));

test("the dashboard shows the demo mall's figures; finance balances every currency and exports CSV", async () => {
  ctx = await open(browser);
  const { page } = ctx;
  await signIn(page, COFFEE.slug, OWNER);
  await page.locator('[data-test="dashboard-figures"]').waitFor();
  await settled(page);
  // The dashboard API's answer, as the page's own session reads it.
  const api = await page.evaluate(async (slug) => {
    const s = JSON.parse(sessionStorage.getItem("pm.portal.session"));
    const res = await fetch(`/v1/tenants/${slug}/staff/reports/dashboard?days=14`, { headers: { Authorization: `Bearer ${s.access_token}` } });
    return res.json();
  }, COFFEE.slug);
  const figure = async (name) => points(await page.locator(`[data-test="figure-${name}"] .figure__value`).innerText());
  // The demo seeds three members, credits each 1,000 + 500·i points and grants 600
  // locked (6,300 issued in all) and redeems the phone credit twice.
  assert.equal(await figure("members"), MEMBER_PHONES.length);
  assert.equal(await figure("members"), api.members_total);
  const issued = api.points.filter((p) => p.currency === "points").reduce((a, p) => a + p.issued, 0);
  assert.equal(await figure("issued"), issued);
  assert.ok(issued >= 6_300, `issued ${issued}`);
  assert.equal(await figure("orders"), api.totals.orders);
  assert.ok(api.totals.orders >= 2, `orders ${api.totals.orders}`);
  assert.equal(await page.locator('[data-test^="chart-"] [data-test="chart"]').count(), 4);
  const hot = await tableRows(page, "hot-products");
  assert.ok(hot.some((r) => r[1].includes("Phone credit")), `hot products: ${JSON.stringify(hot)}`);
  await shot(page, "dashboard");

  // Finance: this month; each currency's row adds up from opening to closing.
  await page.click('[data-test="menu-finance"]');
  await page.locator('[data-test="finance-flow"]').waitFor();
  await settled(page);
  const rows = await tableRows(page, "finance-flow");
  assert.ok(rows.length >= 2, `currencies: ${JSON.stringify(rows)}`);
  for (const r of rows) {
    const [opening, issuedN, spent, returned, expired, adjusted, transferred, closing] = r.slice(1, 9).map(points);
    assert.equal(opening + issuedN - spent + returned - expired + adjusted + transferred, closing, `equation of ${r[0]}`);
  }
  const pointsRow = rows.find((r) => /points/.test(r[0]));
  assert.ok(points(pointsRow[2]) >= 6_300, `points issued this month: ${pointsRow}`);
  assert.match(await page.locator('[data-test="finance-liability"]').innerText(), /^¥[\d,.]+$/);
  const costs = await tableRows(page, "finance-costs");
  const phone = costs.find((r) => r[0].includes("Phone credit"));
  assert.ok(phone, `redemption costs: ${JSON.stringify(costs)}`);
  await shot(page, "finance");

  const [file] = await Promise.all([page.waitForEvent("download"), page.click('[data-test="finance-csv"]')]);
  assert.match(file.suggestedFilename(), /^finance-demo-coffee-\d{4}-\d{2}\.csv$/);
  const { readFile } = await import("node:fs/promises");
  const text = await readFile(await file.path(), "utf8");
  assert.ok(text.startsWith("\ufeff\"period\",\"currency\",\"opening\""), text.slice(0, 80));
  assert.match(text, /"points",/);
});

test("analytics of the demo mall: retention, conversion, velocity and a search that found nothing", async () => {
  ctx = await open(browser);
  const { page } = ctx;
  await signIn(page, COFFEE.slug, OWNER);
  // As a member's app would, without a credential: a product view and a search for a
  // term no product has (counted in memory, written about once a second).
  const term = `unicorn${Date.now() % 100000}`;
  const seen = await page.evaluate(async ([slug, q]) => {
    const list = await (await fetch(`/v1/tenants/${slug}/products?limit=1`)).json();
    await fetch(`/v1/tenants/${slug}/products/${list.items[0].id}`);
    const none = await (await fetch(`/v1/tenants/${slug}/products?q=${q}`)).json();
    return { product: list.items[0].id, found: none.items.length };
  }, [COFFEE.slug, term]);
  assert.equal(seen.found, 0);
  await page.waitForTimeout(1500);
  await page.click('[data-test="menu-analytics"]');
  await page.locator('[data-test="page-analytics"]').waitFor();
  await settled(page);
  const api = await page.evaluate(async (slug) => {
    const s = JSON.parse(sessionStorage.getItem("pm.portal.session"));
    const get = async (p) => (await fetch(`/v1/tenants/${slug}/staff/analytics/${p}`, { headers: { Authorization: `Bearer ${s.access_token}` } })).json();
    return { retention: await get("retention?weeks=8"), conversion: await get("conversion?days=30"), velocity: await get("velocity?days=30") };
  }, COFFEE.slug);

  // Retention: this week's cohort (the newest row) holds the demo's members.
  const cohorts = await tableRows(page, "retention-table");
  assert.equal(cohorts.length, 8);
  const thisWeek = api.retention.cohorts[api.retention.cohorts.length - 1];
  assert.equal(cohorts[0][0], thisWeek.week);
  assert.equal(points(cohorts[0][1]), thisWeek.members);
  assert.ok(thisWeek.members >= MEMBER_PHONES.length, `members this week: ${thisWeek.members}`);

  // Conversion: the demo's redeemed phone credit, and the product just viewed.
  const conv = await tableRows(page, "conversion-table");
  const phone = conv.find((r) => r[1].includes("Phone credit"));
  assert.ok(phone, `conversion: ${JSON.stringify(conv)}`);
  const phoneApi = api.conversion.products.find((p) => p.name.includes("Phone credit"));
  assert.equal(points(phone[6]), phoneApi.orders);
  assert.ok(phoneApi.orders >= 2, `orders ${phoneApi.orders}`);
  const viewed = conv.find((r) => r[0] === String(seen.product));
  assert.ok(viewed && points(viewed[2]) >= 1, `the view is counted: ${JSON.stringify(conv)}`);

  // Velocity: the demo's members spent points; the median shown is the API's.
  const spent = api.velocity.currencies.find((c) => c.currency === "points");
  assert.ok(spent && spent.points_spent > 0, JSON.stringify(api.velocity));
  const median = await page.locator('[data-test="velocity-points"] [data-test="velocity-median"]').innerText();
  assert.equal(Number(median.replace(/\D/g, "")), spent.median_days);
  assert.equal(await page.locator('[data-test="velocity-points"] [data-test="chart"]').count(), 1);

  // Searches: the term that found nothing is listed with it.
  const none = await tableRows(page, "no-result-searches");
  assert.ok(none.some((r) => r[0] === term), `no-result searches: ${JSON.stringify(none)}`);
  assert.ok(points(await page.locator('[data-test="search-count"]').innerText()) >= 1);
  await shot(page, "analytics");

  // The member drawer shows a member's browse record (empty for the demo's members).
  await page.goto(`${BASE_URL}/portal/members?member=1`);
  await page.locator('[data-test="browse-record"]').waitFor();
});
