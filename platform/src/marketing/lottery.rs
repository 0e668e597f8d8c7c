//! The lottery wheel (大转盘, SPEC K3): spend points to draw; a prize table with chances
//! and stock; drawn on the server. A prize out of stock turns into "no prize", so the
//! stock is never exceeded and the odds of the others do not change. A lottery runs
//! while it is active and inside its window; staff change it (the prize table too:
//! a prize already won is retired, never deleted) and read its draws and winners.
//!
//! An item prize may be goods of the catalogue (`product_id`): a draw that wins it takes
//! one from the product's stock (none left: no prize, like an exhausted prize) and
//! creates an order for the member in the draw's transaction — zero points, shipped to
//! the member's default address, fulfilled by staff like any other order.

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use crate::directory::Tenant;
use crate::error::{Error, Result, Validator};
use crate::ids::ProductId;
use crate::ledger::batch;
use crate::ledger::post::{self, LotPart};
use crate::ledger::{Reason, Source, SourceKind};
pub use crate::limits::mall::PRIZES_MAX;
pub use crate::limits::mall::WEIGHT_TOTAL;
use crate::mall::kinds::ProductKind;
use crate::mall::order_state::Status;
use crate::mall::orders::{self, Order};

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Prize {
    /// In a change of a lottery, the prize kept (0 or absent: a new prize); ignored when
    /// a lottery is created.
    #[serde(default)]
    #[schema(minimum = 0)]
    pub id: i64,
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    pub name: String,
    /// points or item.
    #[schema(value_type = PrizeKind)]
    pub kind: String,
    /// Points won (a points prize: 1 to 1,000,000,000).
    #[serde(default)]
    #[schema(minimum = 0)]
    pub points: i64,
    /// An item prize that is goods: the product a win takes from stock and orders for
    /// the member (None: an item recorded for staff, or points).
    #[serde(default)]
    pub product_id: Option<i64>,
    /// Chance in basis points (out of 10000); the weights of a lottery add up to at most
    /// 10000.
    #[schema(minimum = 0, maximum = 10000)]
    pub weight: i32,
    /// None: unlimited. In a change, at least the number already won.
    #[serde(default)]
    #[schema(minimum = 0)]
    pub stock: Option<i64>,
    /// Ignored in a request.
    #[serde(default)]
    pub won: i64,
}

/// What a prize is, in the OpenAPI document.
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum PrizeKind {
    Points,
    Item,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Lottery {
    pub id: i64,
    pub name: String,
    pub currency: String,
    pub cost: i64,
    pub daily_limit: Option<i32>,
    /// active or inactive.
    #[schema(value_type = LotteryStatus)]
    pub status: String,
    /// Draws are taken from (None: from the start).
    pub starts_at: Option<DateTime<Utc>>,
    /// Draws are taken until (None: no end).
    pub ends_at: Option<DateTime<Utc>>,
    #[sqlx(skip)]
    pub prizes: Vec<Prize>,
}

/// Whether a lottery takes draws (inside its window).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LotteryStatus {
    Active,
    Inactive,
}

impl LotteryStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Inactive => "inactive",
        }
    }
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLottery {
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    pub name: String,
    /// Points a draw costs.
    #[schema(minimum = 1, maximum = 1000000)]
    pub cost: i64,
    /// Draws per member per local day of the mall (None: no limit).
    #[serde(default)]
    #[schema(minimum = 1)]
    pub daily_limit: Option<i32>,
    /// Default active.
    #[serde(default)]
    pub status: Option<LotteryStatus>,
    #[serde(default)]
    pub starts_at: Option<DateTime<Utc>>,
    /// After `starts_at`.
    #[serde(default)]
    pub ends_at: Option<DateTime<Utc>>,
    /// The prize table. In a change, a prize of the table left out is removed (retired,
    /// if it was won).
    #[schema(min_items = 1, max_items = 20)]
    pub prizes: Vec<Prize>,
}

/// Creates a lottery with its prize table; audited.
pub async fn create(tx: &mut crate::tx::TenantTx, l: &NewLottery) -> Result<Lottery> {
    let lottery = insert(tx, l).await?;
    tx.audit("lottery.create", &lottery.id.to_string(), serde_json::json!({"name": lottery.name})).await?;
    Ok(lottery)
}

fn validate(l: &NewLottery) -> Result<()> {
    let mut v = Validator::new();
    v.check(!l.name.trim().is_empty() && l.name.chars().count() <= 100, "name", "1 to 100 characters");
    v.check((1..=1_000_000).contains(&l.cost), "cost", "1 to 1000000");
    v.check(l.daily_limit.is_none_or(|d| d > 0), "daily_limit", "1 or more");
    v.check(!l.prizes.is_empty() && l.prizes.len() <= PRIZES_MAX, "prizes", "1 to 20 prizes");
    v.check(
        l.prizes.iter().map(|p| i64::from(p.weight)).sum::<i64>() <= i64::from(WEIGHT_TOTAL),
        "prizes",
        "weights add up to at most 10000",
    );
    for p in &l.prizes {
        v.check(!p.name.trim().is_empty() && p.name.chars().count() <= 100, "prizes.name", "1 to 100 characters");
        v.check(p.kind == "points" || p.kind == "item", "prizes.kind", "points or item");
        v.check(
            p.kind != "points" || (1..=1_000_000_000).contains(&p.points),
            "prizes.points",
            "1 or more for a points prize",
        );
        // An item prize's points are not paid, but stored under the same CHECK.
        v.check(p.points >= 0, "prizes.points", "0 or more");
        v.check((0..=WEIGHT_TOTAL).contains(&p.weight), "prizes.weight", "0 to 10000");
        v.check(p.product_id.is_none() || p.kind == "item", "prizes.product_id", "only for an item prize");
        v.check(p.stock.is_none_or(|s| s >= 0), "prizes.stock", "0 or more");
    }
    if let (Some(from), Some(to)) = (l.starts_at, l.ends_at) {
        v.check(to > from, "ends_at", "after starts_at");
    }
    v.finish()
}

async fn insert(conn: &mut PgConnection, l: &NewLottery) -> Result<Lottery> {
    validate(l)?;
    check_products(conn, l).await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO lotteries (name, cost, daily_limit, status, starts_at, ends_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(l.name.trim())
    .bind(l.cost)
    .bind(l.daily_limit)
    .bind(l.status.unwrap_or(LotteryStatus::Active).as_str())
    .bind(l.starts_at)
    .bind(l.ends_at)
    .fetch_one(&mut *conn)
    .await?;
    for (i, p) in l.prizes.iter().enumerate() {
        insert_prize(conn, id, i, p).await?;
    }
    get(conn, id).await
}

/// Goods prizes name products of this mall.
async fn check_products(conn: &mut PgConnection, l: &NewLottery) -> Result<()> {
    let ids: Vec<i64> = l.prizes.iter().filter_map(|p| p.product_id).collect();
    if ids.is_empty() {
        return Ok(());
    }
    let found: i64 = sqlx::query_scalar("SELECT count(DISTINCT id) FROM products WHERE id = ANY($1)")
        .bind(&ids)
        .fetch_one(conn)
        .await?;
    let mut distinct = ids.clone();
    distinct.sort_unstable();
    distinct.dedup();
    if found != distinct.len() as i64 {
        return Err(Error::invalid_field("prizes.product_id", "a product of this mall"));
    }
    Ok(())
}

/// Adds `p` to lottery `lottery` at `position` in its table.
async fn insert_prize(conn: &mut PgConnection, lottery: i64, position: usize, p: &Prize) -> Result<()> {
    sqlx::query(
        "INSERT INTO lottery_prizes (lottery_id, name, kind, points, weight, stock, position, product_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(lottery)
    .bind(p.name.trim())
    .bind(&p.kind)
    .bind(p.points)
    .bind(p.weight)
    .bind(p.stock)
    .bind(position as i32)
    .bind(p.product_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Changes a lottery: its settings and its whole prize table (prizes named by id are
/// kept with their `won`, new ones added, the others removed or, once won, retired);
/// audited.
pub async fn update(tx: &mut crate::tx::TenantTx, id: i64, l: &NewLottery) -> Result<Lottery> {
    validate(l)?;
    let conn: &mut PgConnection = tx;
    check_products(conn, l).await?;
    let updated: Option<i64> = sqlx::query_scalar(
        "UPDATE lotteries SET name = $2, cost = $3, daily_limit = $4, status = $5, starts_at = $6, ends_at = $7 \
         WHERE id = $1 RETURNING id",
    )
    .bind(id)
    .bind(l.name.trim())
    .bind(l.cost)
    .bind(l.daily_limit)
    .bind(l.status.unwrap_or(LotteryStatus::Active).as_str())
    .bind(l.starts_at)
    .bind(l.ends_at)
    .fetch_optional(&mut *conn)
    .await?;
    if updated.is_none() {
        return Err(Error::not_found("lottery_not_found", "no such lottery"));
    }
    replace_prizes(conn, id, &l.prizes).await?;
    let lottery = get(conn, id).await?;
    tx.audit("lottery.update", &id.to_string(), serde_json::json!({"name": lottery.name, "status": lottery.status}))
        .await?;
    Ok(lottery)
}

/// Makes `prizes` the lottery's table: new ones (id 0) added, the others updated; a prize
/// left out is deleted, or retired once it was won. 422 for a prize of another lottery,
/// or a stock below what was won.
async fn replace_prizes(conn: &mut PgConnection, id: i64, prizes: &[Prize]) -> Result<()> {
    // The current table, locked against draws taking its stock meanwhile.
    let current: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT id, won FROM lottery_prizes WHERE lottery_id = $1 AND NOT retired ORDER BY id FOR UPDATE",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let mut v = Validator::new();
    for p in prizes.iter().filter(|p| p.id != 0) {
        match current.iter().find(|(cid, _)| *cid == p.id) {
            None => v.check(false, "prizes.id", "a prize of this lottery, or 0 for a new one"),
            Some((_, won)) => {
                v.check(p.stock.is_none_or(|s| s >= *won), "prizes.stock", "at least the number already won")
            }
        };
    }
    v.finish()?;
    for (cid, won) in &current {
        if prizes.iter().any(|p| p.id == *cid) {
            continue;
        }
        if *won == 0 {
            sqlx::query("DELETE FROM lottery_prizes WHERE id = $1").bind(cid).execute(&mut *conn).await?;
        } else {
            sqlx::query("UPDATE lottery_prizes SET retired = true WHERE id = $1").bind(cid).execute(&mut *conn).await?;
        }
    }
    for (i, p) in prizes.iter().enumerate() {
        if p.id == 0 {
            insert_prize(conn, id, i, p).await?;
        } else {
            sqlx::query(
                "UPDATE lottery_prizes SET name = $2, kind = $3, points = $4, weight = $5, stock = $6, position = $7, \
                 product_id = $8 WHERE id = $1",
            )
            .bind(p.id)
            .bind(p.name.trim())
            .bind(&p.kind)
            .bind(p.points)
            .bind(p.weight)
            .bind(p.stock)
            .bind(i as i32)
            .bind(p.product_id)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

pub async fn get(conn: &mut PgConnection, id: i64) -> Result<Lottery> {
    let mut l: Lottery = sqlx::query_as(
        "SELECT id, name, currency, cost, daily_limit, status, starts_at, ends_at FROM lotteries WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| Error::not_found("lottery_not_found", "no such lottery"))?;
    l.prizes = sqlx::query_as(
        "SELECT id, name, kind, points, product_id, weight, stock, won FROM lottery_prizes WHERE lottery_id = $1 AND NOT retired \
         ORDER BY position, id",
    )
    .bind(id)
    .fetch_all(conn)
    .await?;
    Ok(l)
}

/// Every lottery (running or not), newest first, a page at a time (staff).
pub async fn list(conn: &mut PgConnection, before_id: Option<i64>, limit: i64) -> Result<Vec<Lottery>> {
    let ids: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM lotteries WHERE ($1::bigint IS NULL OR id < $1) ORDER BY id DESC LIMIT $2")
            .bind(before_id)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.push(get(conn, id).await?);
    }
    Ok(out)
}

/// One draw as staff read it: who, when, and what was won.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct DrawRecord {
    pub id: i64,
    pub member_id: i64,
    pub member_nickname: String,
    pub member_phone: Option<String>,
    /// None: no prize.
    pub prize_id: Option<i64>,
    pub prize_name: Option<String>,
    #[schema(value_type = Option<PrizeKind>)]
    pub prize_kind: Option<String>,
    /// Points paid (a points prize).
    pub prize_points: Option<i64>,
    /// Points the draw cost.
    pub cost: i64,
    /// The order of won goods, which staff fulfil like any other.
    pub order_id: Option<i64>,
    pub created_at: DateTime<Utc>,
}

/// A lottery's draws (`winners_only`: those that won a prize), newest first.
pub async fn draws(
    conn: &mut PgConnection,
    lottery_id: i64,
    winners_only: bool,
    before_id: Option<i64>,
    limit: i64,
) -> Result<Vec<DrawRecord>> {
    get(conn, lottery_id).await?;
    Ok(sqlx::query_as(
        "SELECT d.id, d.member_id, m.nickname AS member_nickname, m.phone AS member_phone, d.prize_id, \
                p.name AS prize_name, p.kind AS prize_kind, CASE WHEN p.kind = 'points' THEN p.points END AS prize_points, \
                -e.amount AS cost, d.order_id, d.created_at \
         FROM lottery_draws d JOIN members m ON m.id = d.member_id JOIN entries e ON e.id = d.cost_entry_id \
         LEFT JOIN lottery_prizes p ON p.id = d.prize_id \
         WHERE d.lottery_id = $1 AND (NOT $2::boolean OR d.prize_id IS NOT NULL) AND ($3::bigint IS NULL OR d.id < $3) \
         ORDER BY d.id DESC LIMIT $4",
    )
    .bind(lottery_id)
    .bind(winners_only)
    .bind(before_id)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Lotteries members can draw from now: active and inside their window.
pub async fn list_active(conn: &mut PgConnection) -> Result<Vec<Lottery>> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM lotteries WHERE status = 'active' AND (starts_at IS NULL OR starts_at <= now()) \
         AND (ends_at IS NULL OR ends_at > now()) ORDER BY id",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.push(get(conn, id).await?);
    }
    Ok(out)
}

/// The outcome of a draw.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Draw {
    pub draw_id: i64,
    /// None: no prize this time.
    pub prize: Option<Prize>,
    pub cost: i64,
    /// Won goods: the order made for them (zero points), fulfilled like any other.
    pub order: Option<Order>,
}

/// Spends the cost and draws a prize on the server.
pub async fn draw(
    conn: &mut PgConnection,
    tenant: &Tenant,
    lottery_id: i64,
    member_id: i64,
    now: DateTime<Utc>,
) -> Result<Draw> {
    let l = get(conn, lottery_id).await?;
    let open = l.starts_at.is_none_or(|s| s <= now) && l.ends_at.is_none_or(|e| now < e);
    if l.status != "active" || !open {
        return Err(Error::conflict("lottery_closed", "this lottery is not running"));
    }
    let source = Source::new(SourceKind::Member, format!("member:{member_id}"))
        .reference(format!("lottery:{lottery_id}"))
        .memo(l.name.clone());
    // The debit locks the member's account, so the daily limit cannot be raced past.
    let (entry, _) = post::debit(conn, member_id, &l.currency, l.cost, Reason::Spend, &source, now).await?;
    check_daily_limit(conn, tenant, &l, member_id, now).await?;
    let prize = pick(conn, &l).await?;
    let order = match prize.as_ref().and_then(|p| p.product_id) {
        Some(product) => Some(prize_order(conn, member_id, product, now).await?),
        None => None,
    };
    if let Some(p) = prize.as_ref().filter(|p| p.kind == "points") {
        pay_points(conn, tenant, &l, p, member_id, now).await?;
    }
    let draw_id: i64 = sqlx::query_scalar(
        "INSERT INTO lottery_draws (lottery_id, member_id, prize_id, cost_entry_id, order_id) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(lottery_id)
    .bind(member_id)
    .bind(prize.as_ref().map(|p| p.id))
    .bind(entry.id)
    .bind(order.as_ref().map(|o| o.id))
    .fetch_one(&mut *conn)
    .await?;
    Ok(Draw { draw_id, prize, cost: l.cost, order })
}

/// 409 `draw_limit` once the member has drawn the lottery's daily limit today (the
/// mall's day).
async fn check_daily_limit(
    conn: &mut PgConnection,
    tenant: &Tenant,
    l: &Lottery,
    member_id: i64,
    now: DateTime<Utc>,
) -> Result<()> {
    let Some(limit) = l.daily_limit else { return Ok(()) };
    let today: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM lottery_draws WHERE lottery_id = $1 AND member_id = $2 \
         AND created_at >= $3",
    )
    .bind(l.id)
    .bind(member_id)
    .bind(crate::localtime::start_of_day(tenant.settings.tz(), now))
    .fetch_one(&mut *conn)
    .await?;
    if today >= i64::from(limit) {
        return Err(Error::conflict("draw_limit", format!("at most {limit} draws a day")));
    }
    Ok(())
}

/// Rolls the wheel by the prizes' weights and takes the prize from stock: an exhausted
/// prize (or goods whose product has none left) is "no prize".
async fn pick(conn: &mut PgConnection, l: &Lottery) -> Result<Option<Prize>> {
    let roll: i32 = rand::rng().random_range(0..WEIGHT_TOTAL);
    let mut acc = 0;
    let mut picked = None;
    for p in &l.prizes {
        acc += p.weight;
        if roll < acc {
            picked = Some(p.clone());
            break;
        }
    }
    // Stock is taken with a conditional update.
    let Some(p) = picked else { return Ok(None) };
    let won: Option<i64> = sqlx::query_scalar(
        "UPDATE lottery_prizes SET won = won + 1 WHERE id = $1 AND (stock IS NULL OR won < stock) RETURNING won",
    )
    .bind(p.id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(won) = won else { return Ok(None) };
    // Goods take one from the product's stock; with none left the prize is "no prize".
    if p.product_id.is_some() && !take_one(conn, p.product_id).await? {
        sqlx::query("UPDATE lottery_prizes SET won = won - 1 WHERE id = $1").bind(p.id).execute(&mut *conn).await?;
        return Ok(None);
    }
    Ok(Some(Prize { won, ..p }))
}

/// Credits a points prize, with the mall's default expiry.
async fn pay_points(
    conn: &mut PgConnection,
    tenant: &Tenant,
    l: &Lottery,
    p: &Prize,
    member_id: i64,
    now: DateTime<Utc>,
) -> Result<()> {
    let expires = crate::ledger::currencies::get(conn, "points").await?.expires;
    let expires_at = tenant.settings.default_expiry(expires, now);
    let win = Source::new(SourceKind::Member, "system:lottery")
        .reference(format!("lottery:{}", l.id))
        .memo(crate::i18n::Voice::of(tenant).text("memo-prize", &[("name", crate::i18n::Arg::Str(&p.name))]));
    let part = [LotPart { amount: p.points, expires_at }];
    batch::credit(conn, member_id, &l.currency, &part, Reason::Earn, &win, now).await?;
    Ok(())
}

/// Takes one of `product` from stock (a conditional update: never below zero); false
/// when none is left.
async fn take_one(conn: &mut PgConnection, product: Option<i64>) -> Result<bool> {
    let Some(product) = product else { return Ok(false) };
    let left: Option<(i64, i64, bool)> = sqlx::query_as(
        "UPDATE products SET stock = stock - 1, redeemed_count = redeemed_count + 1 WHERE id = $1 AND stock >= 1 \
         RETURNING stock, low_stock_threshold, low_stock_alerted",
    )
    .bind(product)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((stock, threshold, alerted)) = left else { return Ok(false) };
    if threshold > 0 && stock <= threshold && !alerted {
        crate::mall::catalog::check_low_stock(conn, ProductId::new(product)).await?;
    }
    Ok(true)
}

/// The order of won goods: zero points, in the state a paid order of the product is in
/// (physical goods wait for shipment, to the member's default address if there is one;
/// a virtual good gets its code), fulfilled and refunded like any other.
async fn prize_order(conn: &mut PgConnection, member_id: i64, product: i64, now: DateTime<Utc>) -> Result<Order> {
    let p = crate::mall::catalog::get(conn, ProductId::new(product)).await?;
    let address: Option<serde_json::Value> = sqlx::query_scalar(
        "SELECT jsonb_build_object('name', name, 'phone', phone, 'region', region, 'detail', detail) \
         FROM addresses WHERE member_id = $1 AND is_default",
    )
    .bind(member_id)
    .fetch_optional(&mut *conn)
    .await?;
    let status = Status::after_payment(p.kind);
    let order_no = orders::new_order_no(now);
    let order = orders::insert(
        conn,
        &orders::NewOrder {
            order_no: &order_no,
            member_id,
            product: &p,
            quantity: 1,
            points: 0,
            cash: 0,
            status,
            debit_entry_id: None,
            alliance_entry_id: None,
            hold_id: None,
            pay_deadline: None,
            address: address.filter(|_| p.kind == ProductKind::Physical),
            note: "lottery prize",
        },
    )
    .await?;
    if status != Status::Completed {
        return Ok(order);
    }
    orders::completed(conn, &order).await?;
    if p.kind == ProductKind::Virtual { orders::issue_code(conn, order.id).await } else { Ok(order) }
}
