//! The demo data set (`pointsmall demo`): a platform operator, an alliance of two
//! merchants with staff logins, and members who hold the alliance's shared points in
//! both malls, two weeks of their recorded purchases and an earn rule to backtest on
//! them, and in each mall a task, published content, a segment and a message. Running it
//! again changes nothing.

use platform::audit::Actor;
use platform::db::Db;
use platform::directory::find_by_slug;
use platform::members::{self, Registration};
use platform::rbac::Role;
use platform::staff::{self, NewStaff, Scope};
use platform::tenancy::{self, NewAlliance, NewTenant};
use platform::{Error, Result};

pub const PLATFORM_ADMIN: (&str, &str) = ("admin@pointsmall.demo", "demo-admin-pass");
pub const ALLIANCE: (&str, &str) = ("demo-alliance", "城南商家联盟");
pub const ALLIANCE_ADMIN: (&str, &str) = ("alliance@pointsmall.demo", "demo-alliance-pass");
/// (slug, name, owner e-mail, operator e-mail); every demo staff password is STAFF_PASSWORD.
pub const MERCHANTS: [(&str, &str, &str, &str); 2] = [
    ("demo-coffee", "街角咖啡 Corner Coffee", "owner@coffee.demo", "operator@coffee.demo"),
    ("demo-books", "半页书店 Half Page Books", "owner@books.demo", "operator@books.demo"),
];
pub const STAFF_PASSWORD: &str = "demo-staff-pass";
/// Members of each demo mall (phone, nickname); password MEMBER_PASSWORD.
pub const MEMBERS: [(&str, &str); 3] = [("13800000001", "小王"), ("13800000002", "小李"), ("13800000003", "小张")];
pub const MEMBER_PASSWORD: &str = "demo-member-pass";

fn ok_if_exists<T>(r: Result<T>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(Error::Conflict { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

pub async fn seed(db: &Db) -> Result<()> {
    let actor = Actor::system("demo");
    let mut conn = db.control().acquire().await?;
    let admin = NewStaff {
        email: PLATFORM_ADMIN.0.into(),
        password: PLATFORM_ADMIN.1.into(),
        role: Role::PlatformAdmin,
        display_name: "Platform operator".into(),
    };
    ok_if_exists(staff::create(&mut conn, Scope::Platform, &admin, &actor).await)?;
    let new_alliance =
        NewAlliance { slug: ALLIANCE.0.into(), name: ALLIANCE.1.into(), currency_code: None, currency_name: None };
    ok_if_exists(tenancy::create_alliance(db.control(), &new_alliance, &actor).await)?;
    let alliance = tenancy::find_alliance(db.control(), ALLIANCE.0).await?;
    let alliance_admin = NewStaff {
        email: ALLIANCE_ADMIN.0.into(),
        password: ALLIANCE_ADMIN.1.into(),
        role: Role::AllianceAdmin,
        display_name: "Alliance admin".into(),
    };
    ok_if_exists(staff::create(&mut conn, Scope::Alliance(alliance.id), &alliance_admin, &actor).await)?;
    let mut malls = Vec::new();
    for (slug, name, owner, operator) in MERCHANTS {
        let new = NewTenant { slug: slug.into(), name: name.into(), alliance: Some(ALLIANCE.0.into()), cluster: None };
        ok_if_exists(tenancy::create_tenant(db, &new, &actor).await)?;
        let tenant = find_by_slug(db.control(), slug)
            .await?
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("demo tenant {slug} missing")))?;
        for (email, role) in [(owner, Role::Owner), (operator, Role::Operator)] {
            let s =
                NewStaff { email: email.into(), password: STAFF_PASSWORD.into(), role, display_name: String::new() };
            ok_if_exists(staff::create(&mut conn, Scope::Tenant(tenant.id), &s, &actor).await)?;
        }
        for (phone, nickname) in MEMBERS {
            let reg = Registration {
                identifier: phone.into(),
                password: Some(MEMBER_PASSWORD.into()),
                code: None,
                nickname: Some(nickname.into()),
                invite_code: None,
            };
            ok_if_exists(members::register(db, &tenant, &reg).await)?;
        }
        malls.push(tenant);
    }
    link_members(db, &malls).await?;
    for tenant in &malls {
        seed_points(db, tenant).await?;
        seed_products(db, tenant).await?;
        seed_purchases_and_rule(db, tenant).await?;
        seed_operations(db, tenant).await?;
    }
    Ok(())
}

/// What a merchant's daily work leaves in a mall, so its screens are not empty: a task, a
/// published announcement, a rule page, a saved segment and a message sent to
/// every member, and a zone of its first products. Once per mall (any task marks it).
async fn seed_operations(db: &Db, tenant: &platform::directory::Tenant) -> Result<()> {
    use platform::content::{self, ContentTransition};
    use platform::{broadcasts, segments, tasks};
    fn input<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T> {
        serde_json::from_value(v).map_err(|e| Error::Internal(anyhow::anyhow!("demo input: {e}")))
    }
    let task = input(serde_json::json!({"name": "连续签到 7 天 Check in 7 days in a row", "event_type": "checked_in",
        "target": 7, "consecutive_days": true, "period": "once", "reward_currency": "points", "reward_amount": 500}))?;
    let mut items: Vec<content::ContentInput> = vec![
        input(serde_json::json!({"kind": "announcement", "locale": "zh-CN", "title": "积分商城上线啦",
            "body": "每消费 1 元得 1 积分，积分可在联盟内两家店通用。"}))?,
        input(serde_json::json!({"kind": "page", "locale": "zh-CN", "key": "points-rules", "title": "积分规则",
            "body": "## 如何获得积分\n\n- 每消费 1 元得 1 积分\n- 每日签到得积分，连续签到奖励更多\n\n## 如何使用\n\n在积分商城兑换商品。"}))?,
    ];
    let segment =
        input(serde_json::json!({"name": "30 天未活跃 Inactive for 30 days", "filter": {"inactive_days": 30}}))?;
    let message =
        input(serde_json::json!({"title": "欢迎来到积分商城", "body": "签到、消费都能得积分，快来兑换好礼吧！"}))?;
    db.write(tenant, &Actor::system("demo"), async |tx| {
        let done: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tasks)").fetch_one(&mut **tx).await?;
        if done {
            return Ok(());
        }
        let products: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM products ORDER BY id LIMIT 3").fetch_all(&mut **tx).await?;
        items.push(input(serde_json::json!({"kind": "zone", "locale": "zh-CN", "key": "picks", "title": "店长推荐",
            "product_ids": products}))?);
        tasks::create(tx, &task).await?;
        for item in &items {
            let c = content::create(tx, item).await?;
            for to in ["pending_review", "published"] {
                let t: ContentTransition = input(serde_json::json!({"to": to}))?;
                content::transition(tx, c.id, &t, Role::Owner).await?;
            }
        }
        segments::create(tx, &segment).await?;
        broadcasts::create(tx, &message, chrono::Utc::now()).await?;
        Ok(())
    })
    .await
}

/// The library's "points per yuan" rule (examples/rules/spend_per_yuan.rhai).
const SPEND_RULE: (&str, &str) =
    ("每消费 1 元得 1 积分 Points per yuan", include_str!("../../../examples/rules/spend_per_yuan.rhai"));

/// Two weeks of purchases per member, recorded before the mall had a rule for them (so
/// they paid nothing), then the library's "points per yuan" rule: a backtest of it over
/// those two weeks shows what it would have cost. Once per mall (the rule's name marks it).
async fn seed_purchases_and_rule(db: &Db, tenant: &platform::directory::Tenant) -> Result<()> {
    use platform::rules::pipeline::{self, IncomingEvent};
    use platform::rules::store::{self, NewRule};
    let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
    let done: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM rules WHERE name = $1)")
        .bind(SPEND_RULE.0)
        .fetch_one(&mut *tx)
        .await?;
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM members ORDER BY id").fetch_all(&mut *tx).await?;
    tx.commit().await?;
    if done {
        return Ok(());
    }
    let tz = tenant.settings.tz();
    let today = platform::localtime::day(tz, chrono::Utc::now());
    let mut events = Vec::new();
    for (i, member_id) in ids.iter().enumerate() {
        for d in 1..=14i64 {
            let noon =
                platform::localtime::start_of(tz, today - chrono::Duration::days(d)) + chrono::Duration::hours(12);
            // ¥38 to ¥608, a different basket each day.
            let amount_fen = 3_800 + ((i as i64 * 7 + d * 13) % 20) * 3_000;
            events.push(IncomingEvent {
                id: format!("demo-purchase-{member_id}-{d}"),
                kind: "purchase".into(),
                member_id: *member_id,
                occurred_at: Some(noon),
                data: serde_json::json!({"amount_fen": amount_fen}),
            });
        }
    }
    let rules = platform::rules::cache::RuleCache::new(std::sync::Arc::new(scripting::Sandbox::new()));
    for chunk in events.chunks(100) {
        pipeline::process(db, &rules, tenant, "partner", chunk).await?;
    }
    let rule = NewRule {
        name: SPEND_RULE.0.into(),
        event_type: "purchase".into(),
        script: SPEND_RULE.1.into(),
        params: serde_json::json!({"points_per_yuan": 1, "tiers": [[50_000, 20], [100_000, 60]]}),
        enabled: true,
        position: 100,
    };
    let sandbox = scripting::Sandbox::new();
    db.write(tenant, &Actor::system("demo"), async |tx| store::create(tx, &sandbox, &rule).await).await?;
    Ok(())
}

/// The demo members have the same phone in both malls: each gets one alliance identity,
/// made in the first mall and linked in the others. A trusted seed step: the demo
/// vouches for its own members' phones (a real member proves theirs with a code) and
/// links them directly (a real member reaches another mall of the alliance through the
/// hand-off, `POST /v1/tenants/{tenant}/auth/alliance-handoff`).
async fn link_members(db: &Db, malls: &[platform::directory::Tenant]) -> Result<()> {
    let Some((first, others)) = malls.split_first() else {
        return Ok(());
    };
    let phones: Vec<String> =
        MEMBERS.iter().map(|(p, _)| platform::members::Identifier::parse_phone(p, "phone")).collect::<Result<_>>()?;
    for mall in malls {
        let mut tx = db.tenant_tx(&mall.cluster, &mall.schema_name).await?;
        sqlx::query("UPDATE members SET phone_proven_at = now() WHERE phone = ANY($1) AND phone_proven_at IS NULL")
            .bind(&phones)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    let mut identities = Vec::new();
    let mut tx = db.tenant_tx(&first.cluster, &first.schema_name).await?;
    for phone in &phones {
        let id: platform::ids::MemberId =
            sqlx::query_scalar("SELECT id FROM members WHERE phone = $1").bind(phone).fetch_one(&mut *tx).await?;
        identities.push((phone, platform::alliance::identity::of_member(&mut tx, first, id).await?));
    }
    tx.commit().await?;
    for mall in others {
        let mut tx = db.tenant_tx(&mall.cluster, &mall.schema_name).await?;
        for (phone, identity) in &identities {
            sqlx::query("UPDATE members SET alliance_member_id = $2 WHERE phone = $1 AND alliance_member_id IS NULL")
                .bind(phone)
                .bind(identity)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    }
    Ok(())
}

/// Gives each demo member points and experience once (their first lots, a lock grant).
async fn seed_points(db: &Db, tenant: &platform::directory::Tenant) -> Result<()> {
    use platform::ledger::batch;
    use platform::ledger::locks::{self, NewLockGrant};
    use platform::ledger::post::{CreditItem, LotPart};
    use platform::ledger::{Reason, Source, SourceKind};
    let now = chrono::Utc::now();
    let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
    let ids: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM members WHERE id NOT IN (SELECT member_id FROM accounts) ORDER BY id")
            .fetch_all(&mut *tx)
            .await?;
    let source = Source::new(SourceKind::System, "system:demo").memo("welcome points (demo)");
    let shared: Option<String> =
        sqlx::query_scalar("SELECT code FROM currencies WHERE shared").fetch_optional(&mut *tx).await?;
    if shared.is_some() && !ids.is_empty() {
        // The mall funds its issuing budget before it issues shared points (¥1,000).
        use platform::alliance::budgets;
        let alliance = budgets::alliance_of(db, tenant).await?;
        let top = platform::alliance::budget::TopUp { amount_fen: 100_000, memo: "demo funding".into() };
        budgets::top_up(db, &alliance, tenant, &top, &Actor::system("system:demo")).await?;
    }
    for (i, id) in ids.into_iter().enumerate() {
        let i = i as i64;
        let soon = LotPart { amount: 200, expires_at: Some(now + chrono::Duration::days(5)) };
        let later =
            LotPart { amount: 800 + 500 * i, expires_at: tenant.settings.expiry.expires_at(now, tenant.settings.tz()) };
        batch::credit(&mut tx, id, "points", &[soon, later], Reason::Earn, &source, now).await?;
        let exp = LotPart { amount: [300, 1500, 6000][(i % 3) as usize], expires_at: None };
        batch::credit(&mut tx, id, "exp", &[exp], Reason::Earn, &source, now).await?;
        if let Some(code) = &shared {
            let parts = vec![LotPart { amount: 1000, expires_at: None }];
            let item = CreditItem { member_id: id, currency: code.clone(), parts, source: source.clone() };
            platform::alliance::book::credit(&mut tx, tenant, item, Reason::Earn, now).await?;
        }
        let gift = NewLockGrant {
            member_id: id,
            currency: "points".into(),
            total: 600,
            per_day: 20,
            memo: "gift (demo)".into(),
        };
        locks::grant(&mut tx, tenant, &gift, &source, now).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A few products per mall, once: physical, virtual with codes, points + cash, a flash price.
async fn seed_products(db: &Db, tenant: &platform::directory::Tenant) -> Result<()> {
    use platform::mall::catalog::{self, Category, ProductInput};
    use platform::mall::kinds::{Listing, ProductKind, ReviewState};
    let mut tx = db.begin(tenant, &platform::audit::Actor::system("demo")).await?;
    let existing: i64 = sqlx::query_scalar("SELECT count(*) FROM products").fetch_one(&mut *tx).await?;
    if existing > 0 {
        return Ok(());
    }
    let cat = catalog::create_category(&mut tx, &Category { id: 0, name: "精选 Featured".into(), position: 1 }).await?;
    let now = chrono::Utc::now();
    let listed = |name: &str, kind: ProductKind, points: i64, stock: i64| ProductInput {
        name: Some(name.into()),
        kind: Some(kind),
        points_price: Some(points),
        stock: Some(stock),
        category_id: Some(cat.id),
        status: Some(Listing::Listed),
        review_state: Some(ReviewState::Approved),
        low_stock_threshold: Some(3),
        ..ProductInput::default()
    };
    let mut mug = listed("保温杯 Thermos mug", ProductKind::Physical, 800, 20);
    mug.cost_price_fen = Some(3_500);
    mug.brand = Some("Demo".into());
    mug.tags = Some(vec!["hot".into()]);
    catalog::create(&mut tx, &mug).await?;
    let mut phone_credit = listed("话费 10 元 Phone credit", ProductKind::Virtual, 1000, 0);
    phone_credit.cost_price_fen = Some(950);
    let credit = catalog::create(&mut tx, &phone_credit).await?;
    let codes: Vec<String> = (1..=10).map(|i| format!("DEMO-{}-{i:04}", tenant.slug.to_uppercase())).collect();
    catalog::add_codes(&mut tx, credit.id, &codes).await?;
    let mut buds = listed("蓝牙耳机 Earbuds (points + cash)", ProductKind::Physical, 500, 10);
    buds.cash_price_fen = Some(4_900);
    buds.cost_price_fen = Some(12_000);
    catalog::create(&mut tx, &buds).await?;
    let mut flash = listed("限时秒杀 Flash-sale tote bag", ProductKind::Physical, 600, 50);
    flash.special_points_price = Some(99);
    flash.special_starts_at = Some(now);
    flash.special_ends_at = Some(now + chrono::Duration::days(7));
    flash.per_member_limit = Some(1);
    flash.cost_price_fen = Some(800);
    catalog::create(&mut tx, &flash).await?;
    // Priced in the alliance's shared points: redeemable with points earned in either mall.
    let shared: Option<String> =
        sqlx::query_scalar("SELECT code FROM currencies WHERE shared").fetch_optional(&mut *tx).await?;
    if let Some(code) = shared {
        let mut voucher = listed("联盟通兑券 Alliance voucher", ProductKind::Coupon, 300, 100);
        voucher.currency = Some(code);
        catalog::create(&mut tx, &voucher).await?;
    }
    seed_lottery(&mut tx).await?;
    tx.commit().await?;
    seed_orders(db, tenant, credit.id).await
}

/// A running lottery wheel with a prize table (seeded with the products, once).
async fn seed_lottery(tx: &mut platform::tx::TenantTx) -> Result<()> {
    use platform::marketing::lottery::{self, NewLottery, Prize};
    let prize = |name: &str, kind: &str, points: i64, weight: i32, stock: Option<i64>| Prize {
        id: 0,
        name: name.into(),
        kind: kind.into(),
        points,
        product_id: None,
        weight,
        stock,
        won: 0,
    };
    let wheel = NewLottery {
        name: "幸运大转盘 Lucky wheel".into(),
        cost: 20,
        daily_limit: Some(3),
        status: None,
        starts_at: None,
        ends_at: None,
        prizes: vec![
            prize("保温杯 Thermos mug", "item", 0, 100, Some(5)),
            prize("100 积分 points", "points", 100, 1000, None),
            prize("10 积分 points", "points", 10, 4000, None),
        ],
    };
    lottery::create(tx, &wheel).await?;
    Ok(())
}

/// Two members (not the first, whom the portal tests use) redeem the phone credit, so the
/// dashboard and finance have orders to show.
async fn seed_orders(db: &Db, tenant: &platform::directory::Tenant, product: platform::ids::ProductId) -> Result<()> {
    use platform::mall::redeem::{self, RedeemRequest};
    let cache = platform::mall::browse::CatalogCache::default();
    let mut tx = db.begin(tenant, &Actor::system("demo")).await?;
    let members: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM members ORDER BY id DESC LIMIT 2").fetch_all(&mut *tx).await?;
    for member_id in members {
        let req = RedeemRequest { product_id: product, quantity: 1, address_id: None };
        let (_, take) = redeem::redeem(&mut tx, &cache, tenant, member_id, &req, chrono::Utc::now()).await?;
        take.apply(db, tenant, &mut tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// What to print after seeding.
pub fn logins(base: &str) -> String {
    let mut s = String::new();
    s += &format!("  Merchant portal:  {base}/portal/\n");
    s += &format!("  API docs:         {base}/docs   (OpenAPI: {base}/openapi.json)\n");
    s += &format!("  Products:         {base}/v1/tenants/demo-coffee/products\n");
    s += &format!(
        "  Alliance malls:   {base}/v1/alliances/{}/malls   (each member holds 1,000 shared points from each mall, \
         one balance in both; move between malls with POST {base}/v1/tenants/<mall>/auth/alliance-handoff)\n",
        ALLIANCE.0
    );
    s += &format!(
        "  Platform operator: {} / {}   (POST {base}/v1/platform/auth/login)\n",
        PLATFORM_ADMIN.0, PLATFORM_ADMIN.1
    );
    s += &format!(
        "  Alliance admin:    {} / {}   (alliance {}, POST {base}/v1/alliances/{}/auth/login)\n",
        ALLIANCE_ADMIN.0, ALLIANCE_ADMIN.1, ALLIANCE.0, ALLIANCE.0
    );
    for (slug, name, owner, operator) in MERCHANTS {
        s += &format!("  Merchant {slug} ({name}): owner {owner}, operator {operator}; password {STAFF_PASSWORD}\n");
    }
    let phones: Vec<&str> = MEMBERS.iter().map(|m| m.0).collect();
    s += &format!(
        "  Members in each mall: {} / password {MEMBER_PASSWORD}   (POST {base}/v1/tenants/<mall>/auth/login)\n",
        phones.join(", ")
    );
    s
}

/// `pointsmall demo`: migrates, seeds and prints the demo logins.
pub async fn run(url: &str, base_url: &str) -> anyhow::Result<()> {
    let db = Db::connect(url, &[], 4).await?;
    let s = platform::migrate::migrate_all(&db, platform::limits::MIGRATE_CONCURRENCY_DEFAULT, None).await?;
    anyhow::ensure!(s.failures.is_empty(), "migration failed: {:?}", s.failures);
    seed(&db).await?;
    println!("Demo data is in place.\n{}", logins(base_url));
    Ok(())
}
