// End-to-end flows of the marketing screens (check-in, lucky wheel, flash sales) and the
// operator's health screen: each changes something on its screen and checks the change
// through the API, as the merchant's app or the operator would see it.
//
//   PORTAL_BASE_URL=http://127.0.0.1:18080 node --test admin-portal/e2e/
import { test, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { BASE_URL, COFFEE, BOOKS, OWNER, MEMBER, PLATFORM, launch, open, signIn, signInAs, eventually, settled, memberApi, pick, shot } from "./helpers.mjs";

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

/** Calls the API with the portal's own session (staff or platform); answers {status, body}. */
async function asPortal(page, method, path, body) {
  return page.evaluate(
    async ({ method, path, body }) => {
      const s = JSON.parse(sessionStorage.getItem("pm.portal.session"));
      const res = await fetch(path, {
        method,
        headers: { Authorization: `Bearer ${s.access_token}`, ...(body ? { "Content-Type": "application/json" } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : null };
    },
    { method, path, body },
  );
}

test("the owner sets the check-in rewards; a member's check-in pays day 1 from them and is counted", async () => {
  ctx = await open(browser);
  const { page } = ctx;
  // The bookshop: the rule test makes a check-in rule of its own in the coffee shop.
  await signIn(page, BOOKS.slug, "owner@books.demo");
  await page.click('[data-test="menu-checkin"]');
  await page.locator('[data-test="page-checkin"]').waitFor();
  await settled(page);
  const before = Number((await page.locator('[data-test="checkin-today"]').innerText()).replace(/,/g, ""));
  await page.fill('[data-test="checkin-day-1"] input', "7");
  await page.fill('[data-test="checkin-bonus"] input', "0");
  await page.click('[data-test="checkin-add-day"]');
  await page.click('[data-test="checkin-save"]');
  await page.locator(".el-message--success").waitFor();
  const staff = await asPortal(page, "GET", `/v1/tenants/${BOOKS.slug}/staff/checkin`);
  assert.equal(staff.status, 200, JSON.stringify(staff.body));
  assert.equal(staff.body.rewards.table[0], 7);
  assert.equal(staff.body.rewards.table.length, 8, "a day added after the built-in seven");
  assert.equal(staff.body.rewards.day7_bonus, 0);
  assert.equal(staff.body.customised, true);
  assert.equal(staff.body.table_in_effect, true, "no rule of the mall's own decides");

  // The member checks in from the app: on a fresh demo database it is their first, and
  // day 1 pays the 7 points just set.
  const member = await memberApi(page.request, BOOKS.slug);
  const out = await member("POST", "/me/checkins");
  assert.equal(out.status, 200, JSON.stringify(out.body));
  if (!out.body.replayed) assert.match(JSON.stringify(out.body.effects), /"amount":7\b/, JSON.stringify(out.body));
  await page.reload();
  await settled(page);
  await eventually(async () => Number((await page.locator('[data-test="checkin-today"]').innerText()).replace(/,/g, "")) >= Math.max(1, before), "today's check-in counted");
  await shot(page, "checkin");
});

test("the owner builds a lucky wheel, a member draws from it, the winner shows; a change closes it", async () => {
  ctx = await open(browser);
  const { page } = ctx;
  const name = `e2e 转盘 ${Date.now() % 1_000_000}`;
  await signIn(page, COFFEE.slug, OWNER);
  await page.click('[data-test="menu-lottery"]');
  await page.locator('[data-test="page-lottery"]').waitFor();
  await settled(page);
  await page.click('[data-test="lottery-new"]');
  await page.fill('[data-test="lottery-name-input"]', name);
  await page.fill('[data-test="lottery-cost-input"] input', "30");
  await page.fill('[data-test="prize-name-0"]', "15 积分");
  await page.fill('[data-test="prize-points-0"] input', "15");
  await page.fill('[data-test="prize-odds-0"] input', "100");
  await page.locator('[data-test="prize-odds-0"] input').blur();
  // A goods prize names the product whose order a win makes (at 0%, so every draw below
  // still wins the points).
  const products = await asPortal(page, "GET", `/v1/tenants/${COFFEE.slug}/staff/products?limit=1`);
  const goods = products.body.items[0];
  assert.ok(goods, JSON.stringify(products.body));
  await page.click('[data-test="prize-add"]');
  await page.fill('[data-test="prize-name-1"]', "e2e 马克杯");
  await page.locator('[data-test="prizes-table"] .el-table__body-wrapper tbody tr').nth(1).locator(".el-select").first().click();
  await page.locator(".el-select-dropdown__item:visible", { hasText: "实物" }).first().click();
  await pick(page, '[data-test="prize-product-1"]', goods.name);
  await page.fill('[data-test="prize-odds-1"] input', "0");
  await page.locator('[data-test="prize-odds-1"] input').blur();
  await eventually(async () => (await page.locator('[data-test="prize-none"]').innerText()).includes("0%"), "no chance left without a prize");
  await page.click('[data-test="lottery-save"]');
  await page.locator('[data-test="lottery-dialog"]').waitFor({ state: "hidden" });
  const row = page.locator('[data-test="lotteries-table"] .el-table__body-wrapper tbody tr', { hasText: name });
  await row.locator('[data-test="lottery-state"]', { hasText: "进行中" }).waitFor();

  // The API has it as set, odds in basis points.
  const listed = await asPortal(page, "GET", `/v1/tenants/${COFFEE.slug}/staff/lotteries?limit=200`);
  const wheel = listed.body.items.find((l) => l.name === name);
  assert.ok(wheel, JSON.stringify(listed.body));
  assert.equal(wheel.cost, 30);
  assert.deepEqual(wheel.prizes.map((p) => [p.name, p.kind, p.weight]), [["15 积分", "points", 10000], ["e2e 马克杯", "item", 0]]);
  assert.equal(wheel.prizes[0].points, 15);
  assert.equal(wheel.prizes[1].product_id, goods.id, "the goods prize names the picked product");

  // A member draws (every draw wins at 100%).
  const member = await memberApi(page.request, COFFEE.slug);
  const drawn = await member("POST", `/me/lotteries/${wheel.id}/draws`, undefined, { "Idempotency-Key": `e2e-draw-${Date.now()}` });
  assert.equal(drawn.status, 201, JSON.stringify(drawn.body));
  assert.equal(drawn.body.prize.name, "15 积分");

  // Its winners in the drawer, with the member's phone; the URL keeps the drawer.
  await row.locator('[data-test="lottery-draws"]').click();
  await page.locator('[data-test="draws-drawer"]').waitFor();
  await page.click('[data-test="draws-winners"]');
  await eventually(async () => new URL(page.url()).searchParams.get("winners") === "1", "winners only in the URL");
  assert.equal(new URL(page.url()).searchParams.get("draws"), String(wheel.id));
  await settled(page);
  await page.locator('[data-test="draws-table"] [data-test="draw-member"]', { hasText: MEMBER.phone }).first().waitFor();
  assert.equal((await page.locator('[data-test="draws-table"] [data-test="draw-prize"]').first().innerText()).trim(), "15 积分");
  await shot(page, "lottery-winners");
  await page.reload();
  await page.locator('[data-test="draws-drawer"] [data-test="draw-member"]').first().waitFor();
  await page.keyboard.press("Escape");
  await page.locator('[data-test="draws-drawer"]').waitFor({ state: "hidden" });

  // Changed: dearer and off. Members no longer see it.
  await row.locator('[data-test="lottery-edit"]').click();
  await page.locator('[data-test="lottery-dialog"]').waitFor();
  await page.fill('[data-test="lottery-cost-input"] input', "40");
  await page.click('[data-test="lottery-inactive"]');
  await page.click('[data-test="lottery-save"]');
  await page.locator('[data-test="lottery-dialog"]').waitFor({ state: "hidden" });
  await row.locator('[data-test="lottery-state"]', { hasText: "已停用" }).waitFor();
  const after = await asPortal(page, "GET", `/v1/tenants/${COFFEE.slug}/staff/lotteries/${wheel.id}`);
  assert.equal(after.body.cost, 40);
  assert.equal(after.body.status, "inactive");
  assert.equal(after.body.prizes[0].won, 1, "the prize keeps what it won");
  assert.equal(after.body.prizes[1].product_id, goods.id, "editing the wheel keeps the goods prize's product");
  const running = await member("GET", "/lotteries");
  assert.ok(!running.body.some((l) => l.id === wheel.id), "an inactive wheel is not listed for members");
});

test("an upcoming special price is listed, changed and ended on the flash sales screen", async () => {
  ctx = await open(browser);
  const { page } = ctx;
  const name = `e2e 特价 ${Date.now() % 1_000_000}`;
  await signIn(page, COFFEE.slug, OWNER);
  await page.locator('[data-test="page-dashboard"]').waitFor();
  const day = 24 * 3600 * 1000;
  const created = await asPortal(page, "POST", `/v1/tenants/${COFFEE.slug}/staff/products`, {
    name, kind: "coupon", points_price: 400, stock: 10, status: "listed", review_state: "approved",
    special_points_price: 300, special_starts_at: new Date(Date.now() + day).toISOString(), special_ends_at: new Date(Date.now() + 2 * day).toISOString(),
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const id = created.body.id;

  await page.click('[data-test="menu-flash-sales"]');
  await page.locator('[data-test="page-flash-sales"]').waitFor();
  await page.locator('[data-test="flash-tabs"] #tab-upcoming').click();
  await eventually(async () => new URL(page.url()).searchParams.get("window") === "upcoming", "the tab in the URL");
  await settled(page);
  const row = page.locator('[data-test="flash-table"] .el-table__body-wrapper tbody tr', { hasText: name });
  await row.locator('[data-test="flash-state"]', { hasText: "未开始" }).waitFor();
  assert.match(await row.innerText(), /省 25%/);

  await row.locator('[data-test="flash-edit"]').click();
  await page.locator('[data-test="flash-dialog"]').waitFor();
  await page.fill('[data-test="flash-price-input"] input', "250");
  await page.click('[data-test="flash-save"]');
  await page.locator('[data-test="flash-dialog"]').waitFor({ state: "hidden" });
  await eventually(async () => (await row.locator('[data-test="flash-price"]').innerText()).trim() === "250", "the new special price listed");
  let p = await asPortal(page, "GET", `/v1/tenants/${COFFEE.slug}/staff/products/${id}`);
  assert.equal(p.body.special_points_price, 250);
  await shot(page, "flash-sales");

  await row.locator('[data-test="flash-end"]').click();
  await page.locator(".el-message-box").getByRole("button", { name: "确定" }).click();
  await row.waitFor({ state: "detached" });
  p = await asPortal(page, "GET", `/v1/tenants/${COFFEE.slug}/staff/products/${id}`);
  assert.ok(new Date(p.body.special_ends_at) <= new Date(), JSON.stringify(p.body));
  const listed = await asPortal(page, "GET", `/v1/tenants/${COFFEE.slug}/staff/products?special=current_or_upcoming`);
  assert.ok(!listed.body.items.some((x) => x.id === id), "an ended special price is not listed");
  // Members read the product with its special price over (their cache follows).
  const member = await memberApi(page.request, COFFEE.slug);
  await eventually(async () => {
    const seen = await member("GET", `/products/${id}`);
    return seen.status === 200 && new Date(seen.body.special_ends_at) <= new Date();
  }, "the member API shows the special price ended");
});

test("the platform operator sees a new tenant's schema at the latest migration on the health screen", async () => {
  ctx = await open(browser);
  const { page } = ctx;
  await signInAs(page, "platform", { email: PLATFORM.email, password: PLATFORM.password });
  await page.locator('[data-test="page-tenants"]').waitFor();
  const slug = `e2e-health-${Date.now() % 1_000_000}`;
  const made = await asPortal(page, "POST", "/v1/platform/tenants", { slug, name: "Health check mall" });
  assert.equal(made.status, 201, JSON.stringify(made.body));

  await page.click('[data-test="menu-platform-health"]');
  await page.locator('[data-test="page-health"]').waitFor();
  await settled(page);
  const api = await asPortal(page, "GET", "/v1/platform/health");
  assert.equal(api.status, 200);
  const latest = api.body.tenant_latest.version;
  assert.equal((await page.locator('[data-test="health-latest"]').innerText()).trim(), String(latest));
  assert.equal((await page.locator('[data-test="health-total"]').innerText()).replace(/,/g, ""), String(api.body.tenants_total));
  const row = page.locator('[data-test="schemas-table"] .el-table__body-wrapper tbody tr', { hasText: slug });
  await row.waitFor();
  assert.equal((await row.locator('[data-test="schema-version"]').innerText()).trim(), String(latest));
  assert.equal((await row.locator('[data-test="schema-pending"]').innerText()).trim(), "已是最新");
  const mine = api.body.tenants.find((x) => x.slug === slug);
  assert.deepEqual([mine.version, mine.pending], [latest, []]);
  assert.ok(api.body.clusters.some((c) => c.name === "main" && c.reachable), JSON.stringify(api.body.clusters));
  await page.locator('[data-test="cluster-state"]', { hasText: "正常" }).first().waitFor();
  await shot(page, "platform-health");

  // Only the tenants behind: none on a migrated database.
  await page.click('[data-test="health-behind-only"]');
  await eventually(async () => new URL(page.url()).searchParams.get("behind") === "1", "the filter in the URL");
  if (api.body.tenants_behind === 0) await page.locator('[data-test="schemas-table"]', { hasText: "所有商户库都是最新" }).waitFor();
  await page.reload();
  await page.locator('[data-test="page-health"]').waitFor();
  await page.locator(".el-checkbox.is-checked", { hasText: "只看待迁移" }).waitFor();

  // Issue 14 point 4: the operator downloads the new mall's archive, imports it back
  // under another slug, then deletes the mall by typing its slug; it leaves the list and
  // shows among the deleted malls.
  await page.goto(`${BASE_URL}/portal/platform/tenants`);
  await page.locator('[data-test="page-tenants"]').waitFor();
  await settled(page);
  const tenantRow = page.locator('[data-test="tenants-table"] .el-table__body-wrapper tbody tr', { hasText: slug });
  await tenantRow.waitFor();
  const [archive] = await Promise.all([page.waitForEvent("download"), tenantRow.locator('[data-test="tenant-export"]').click()]);
  assert.match(archive.suggestedFilename(), new RegExp(`^${slug}-\\d{8}\\.tar\\.gz$`));
  const { stat } = await import("node:fs/promises");
  assert.ok((await stat(await archive.path())).size > 100, "an archive, not an error");
  // Issue 13 point 9: the operator uploads that archive on the same screen under another
  // slug; the result shows and the mall is listed; the same slug again is refused with
  // the server's message in the dialog.
  const copySlug = `e2e-copy-${Date.now() % 1_000_000}`;
  await page.locator('[data-test="tenant-import"]').click();
  const importDialog = page.locator('[data-test="tenant-import-dialog"]');
  await importDialog.waitFor();
  await page.locator('[data-test="tenant-import-file"]').setInputFiles(await archive.path());
  await page.locator('[data-test="tenant-import-slug"]').fill(copySlug);
  await page.locator('[data-test="tenant-import-submit"]').click();
  await page.locator('[data-test="tenant-import-result"]', { hasText: `已导入「${copySlug}」` }).waitFor();
  await page.locator('[data-test="tenant-import-result"]', { hasText: "账本校验通过" }).waitFor();
  await page.locator('[data-test="tenants-table"] .el-table__body-wrapper tbody tr', { hasText: copySlug }).waitFor();
  const copied = await asPortal(page, "GET", `/v1/platform/tenants/${copySlug}`);
  assert.equal(copied.status, 200, JSON.stringify(copied.body));
  await shot(page, "platform-tenant-import");
  await page.locator('[data-test="tenant-import-submit"]').click();
  await page.locator('[data-test="tenant-import-error"]', { hasText: "已被占用" }).waitFor();
  assert.equal(await page.locator('[data-test="tenant-import-result"]').count(), 0, "no result for a refused import");
  await importDialog.locator(".el-dialog__footer button", { hasText: "关闭" }).click();
  await importDialog.waitFor({ state: "hidden" });
  await tenantRow.locator('[data-test="tenant-delete"]').click();
  const dialog = page.locator('[data-test="tenant-delete-dialog"]');
  const submit = page.locator('[data-test="tenant-delete-submit"]');
  await page.locator('[data-test="tenant-delete-confirm"]').fill("not-the-slug");
  assert.ok(await submit.isDisabled(), "disabled until the slug matches");
  await page.locator('[data-test="tenant-delete-confirm"]').fill(slug);
  assert.ok(await submit.isEnabled());
  await submit.click();
  await dialog.waitFor({ state: "hidden" });
  await tenantRow.waitFor({ state: "detached" });
  await page.locator('[data-test="tombstones-table"] tbody tr', { hasText: slug }).waitFor();
  const stones = await asPortal(page, "GET", "/v1/platform/tombstones");
  assert.ok(stones.body.some((x) => x.slug === slug), JSON.stringify(stones.body));
});

test("the owner adds a level in the settings' level table (V1) and the API has it", async () => {
  ctx = await open(browser);
  const { page } = ctx;
  // The bookshop, so the coffee shop's members keep their levels for the other flows.
  await signIn(page, BOOKS.slug, "owner@books.demo");
  await page.goto(`${BASE_URL}/portal/settings?tab=levels`);
  await page.locator('[data-test="levels-table"]').waitFor();
  await settled(page);
  const before = await asPortal(page, "GET", `/v1/tenants/${BOOKS.slug}/staff/levels`);
  const n = before.body.length;
  await page.getByRole("button", { name: "添加等级" }).click();
  await page.getByLabel(`等级名称 ${n + 1}`).fill("e2e 黑卡");
  await page.getByLabel(`经验门槛 ${n + 1}`).fill("999999");
  await page.getByLabel(`权益（JSON） ${n + 1}`).fill('{"earn_multiplier": 2}');
  await page.locator(".page").getByRole("button", { name: "保存" }).last().click();
  await page.locator(".el-message-box").getByRole("button", { name: "保存" }).click();
  await page.locator(".el-message--success").waitFor();
  const after = await asPortal(page, "GET", `/v1/tenants/${BOOKS.slug}/staff/levels`);
  const black = after.body.find((l) => l.name === "e2e 黑卡");
  assert.ok(black, JSON.stringify(after.body));
  assert.deepEqual([black.threshold, black.benefits], [999999, { earn_multiplier: 2 }]);
  assert.equal(after.body.length, n + 1);
});
