//! The lottery wheel (大转盘, SPEC K3): spend points to draw; a prize table with chances
//! and stock; drawn on the server. A prize out of stock turns into "no prize", so the
//! stock is never exceeded and the odds of the others do not change.

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use crate::directory::Tenant;
use crate::error::{Error, Result, Validator};
use crate::ledger::batch;
use crate::ledger::post::{self, LotPart};
use crate::ledger::{Reason, Source, SourceKind};
pub use crate::limits::mall::PRIZES_MAX;
pub use crate::limits::mall::WEIGHT_TOTAL;

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Prize {
    /// Ignored in a request.
    #[serde(default)]
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
    /// Chance in basis points (out of 10000); the weights of a lottery add up to at most
    /// 10000.
    #[schema(minimum = 0, maximum = 10000)]
    pub weight: i32,
    /// None: unlimited.
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
    pub status: String,
    #[sqlx(skip)]
    pub prizes: Vec<Prize>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLottery {
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    pub name: String,
    /// Points a draw costs.
    #[schema(minimum = 1, maximum = 1000000)]
    pub cost: i64,
    #[serde(default)]
    #[schema(minimum = 1)]
    pub daily_limit: Option<i32>,
    /// The prize table.
    #[schema(min_items = 1, max_items = 20)]
    pub prizes: Vec<Prize>,
}

/// Creates a lottery with its prize table; audited.
pub async fn create(tx: &mut crate::tx::TenantTx, l: &NewLottery) -> Result<Lottery> {
    let lottery = insert(tx, l).await?;
    tx.audit("lottery.create", &lottery.id.to_string(), serde_json::json!({"name": lottery.name})).await?;
    Ok(lottery)
}

async fn insert(conn: &mut PgConnection, l: &NewLottery) -> Result<Lottery> {
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
        v.check(p.stock.is_none_or(|s| s >= 0), "prizes.stock", "0 or more");
    }
    v.finish()?;
    let id: i64 =
        sqlx::query_scalar("INSERT INTO lotteries (name, cost, daily_limit) VALUES ($1, $2, $3) RETURNING id")
            .bind(l.name.trim())
            .bind(l.cost)
            .bind(l.daily_limit)
            .fetch_one(&mut *conn)
            .await?;
    for (i, p) in l.prizes.iter().enumerate() {
        sqlx::query("INSERT INTO lottery_prizes (lottery_id, name, kind, points, weight, stock, position) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(id)
            .bind(p.name.trim())
            .bind(&p.kind)
            .bind(p.points)
            .bind(p.weight)
            .bind(p.stock)
            .bind(i as i32)
            .execute(&mut *conn)
            .await?;
    }
    get(conn, id).await
}

pub async fn get(conn: &mut PgConnection, id: i64) -> Result<Lottery> {
    let mut l: Lottery =
        sqlx::query_as("SELECT id, name, currency, cost, daily_limit, status FROM lotteries WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| Error::not_found("lottery_not_found", "no such lottery"))?;
    l.prizes = sqlx::query_as("SELECT id, name, kind, points, weight, stock, won FROM lottery_prizes WHERE lottery_id = $1 ORDER BY position, id")
        .bind(id)
        .fetch_all(conn)
        .await?;
    Ok(l)
}

pub async fn list_active(conn: &mut PgConnection) -> Result<Vec<Lottery>> {
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM lotteries WHERE status = 'active' ORDER BY id")
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
    if l.status != "active" {
        return Err(Error::conflict("lottery_closed", "this lottery is not running"));
    }
    let source = Source::new(SourceKind::Member, format!("member:{member_id}"))
        .reference(format!("lottery:{lottery_id}"))
        .memo(l.name.clone());
    // The debit locks the member's account, so the daily limit cannot be raced past.
    let (entry, _) = post::debit(conn, member_id, &l.currency, l.cost, Reason::Spend, &source, now).await?;
    if let Some(limit) = l.daily_limit {
        let today: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM lottery_draws WHERE lottery_id = $1 AND member_id = $2 \
             AND created_at >= $3",
        )
        .bind(lottery_id)
        .bind(member_id)
        .bind(crate::localtime::start_of_day(tenant.settings.tz(), now))
        .fetch_one(&mut *conn)
        .await?;
        if today >= i64::from(limit) {
            return Err(Error::conflict("draw_limit", format!("at most {limit} draws a day")));
        }
    }
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
    // Stock is taken with a conditional update: an exhausted prize becomes "no prize".
    let prize = match picked {
        Some(p) => {
            let won: Option<i64> = sqlx::query_scalar(
                "UPDATE lottery_prizes SET won = won + 1 WHERE id = $1 AND (stock IS NULL OR won < stock) RETURNING won",
            )
            .bind(p.id)
            .fetch_optional(&mut *conn)
            .await?;
            won.map(|w| Prize { won: w, ..p })
        }
        None => None,
    };
    if let Some(p) = prize.as_ref().filter(|p| p.kind == "points") {
        let expires = crate::ledger::currencies::get(conn, "points").await?.expires;
        let expires_at = tenant.settings.default_expiry(expires, now);
        let win = Source::new(SourceKind::Member, "system:lottery")
            .reference(format!("lottery:{lottery_id}"))
            .memo(format!("prize: {}", p.name));
        batch::credit(
            conn,
            member_id,
            &l.currency,
            &[LotPart { amount: p.points, expires_at }],
            Reason::Earn,
            &win,
            now,
        )
        .await?;
    }
    let draw_id: i64 = sqlx::query_scalar(
        "INSERT INTO lottery_draws (lottery_id, member_id, prize_id, cost_entry_id) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(lottery_id)
    .bind(member_id)
    .bind(prize.as_ref().map(|p| p.id))
    .bind(entry.id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Draw { draw_id, prize, cost: l.cost })
}
