//! Redemption (SPEC O1, O2): one transaction — check the window, level and per-member
//! limit, take the points (or hold them until the cash part is paid), create the order,
//! issue a code for virtual goods, and last take the stock (`stock::take`). Never
//! oversell, never double-spend.

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use sqlx::PgConnection;

use super::browse::CatalogCache;
use super::catalog::{self, Product};
use super::kinds::{Listing, ProductKind, ReviewState};
use super::order_state::Status;
use super::orders::{self, Order};
use super::stock;
use crate::alliance::book;
use crate::db::Db;
use crate::directory::Tenant;
use crate::error::{Error, Result};
use crate::ids::{EntryId, HoldId, ProductId};
use crate::ledger::holds::{self, NewHold};
use crate::ledger::{Reason, Source, SourceKind, post};
use crate::limits::mall::HOLD_MARGIN_SECS;
pub use crate::limits::mall::QUANTITY_MAX;
use crate::outbox::Emitted;

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeemRequest {
    pub product_id: ProductId,
    /// How many (default 1).
    #[serde(default = "one")]
    #[schema(minimum = 1, maximum = 10)]
    pub quantity: i32,
    /// One of the member's addresses (required for physical goods).
    #[serde(default)]
    pub address_id: Option<i64>,
}

fn one() -> i32 {
    1
}

fn unavailable(p: &Product, now: DateTime<Utc>) -> Option<Error> {
    let open = p.status == Listing::Listed
        && p.review_state == ReviewState::Approved
        && p.starts_at.is_none_or(|s| s <= now)
        && p.ends_at.is_none_or(|e| e > now);
    (!open).then(|| Error::conflict("product_unavailable", "this product cannot be redeemed now"))
}

/// The refusal of a redemption of a product this server saw sold out within the last
/// `browse::SOLD_OUT_MEMO_SECS`, when that is all there is to answer (the quantity is
/// valid). Most attempts of a sold-out flash sale end here, before any transaction: the
/// caller answers it unless the idempotency key already has a first answer.
pub fn known_sold_out(catalog: &CatalogCache, tenant: &Tenant, req: &RedeemRequest) -> Option<Error> {
    (quantity(req).is_ok() && catalog.seen_sold_out(tenant.id, req.product_id)).then(stock::sold_out)
}

/// The quantity asked for, 1 to `QUANTITY_MAX`.
fn quantity(req: &RedeemRequest) -> Result<i64> {
    if !(1..=QUANTITY_MAX).contains(&req.quantity) {
        return Err(Error::invalid_field("quantity", format!("1 to {QUANTITY_MAX}")));
    }
    Ok(i64::from(req.quantity))
}

/// Everything but the stock: the caller records its answer, then applies the returned
/// `StockTake` in the same transaction and commits.
///
/// `catalog` remembers products seen sold out (for `browse::SOLD_OUT_MEMO_SECS`); the
/// caller asks `known_sold_out` before it opens the transaction.
pub async fn redeem(
    conn: &mut PgConnection,
    catalog: &CatalogCache,
    tenant: &Tenant,
    member_id: i64,
    req: &RedeemRequest,
    now: DateTime<Utc>,
) -> Result<(Order, StockTake)> {
    let q = quantity(req)?;
    // Cheap checks first, without locks.
    let p = catalog::get(conn, req.product_id).await?;
    if let Some(e) = unavailable(&p, now) {
        return Err(e);
    }
    if p.stock == 0 {
        catalog.mark_sold_out(tenant.id, p.id);
    }
    if p.stock < q {
        return Err(stock::sold_out());
    }
    let address = shipping_to(conn, member_id, &p, req.address_id).await?;
    let points = p.price_at(now) * q;
    let cash = p.cash_price_fen * q;
    // Priced in the alliance's shared points (C6): paid from the alliance ledger.
    let shared = tenant.alliance_id.is_some() && book::is_shared(conn, &p.currency).await?;
    lock_spending(conn, member_id, &p, shared).await?;
    let standing = Standing::read(conn, member_id, &p).await?;
    standing.check(&p, q)?;
    let order_no = orders::new_order_no(now);
    let price = Price { points, cash, shared };
    let Paid { status, debit_entry_id, alliance_entry_id, hold_id, pay_deadline } =
        pay(conn, tenant, member_id, &p, price, &order_no, now).await?;
    let order = orders::insert(
        conn,
        &orders::NewOrder {
            order_no: &order_no,
            member_id,
            product: &p,
            quantity: req.quantity,
            points,
            cash,
            status,
            debit_entry_id,
            alliance_entry_id,
            hold_id,
            pay_deadline,
            address,
            note: "redeemed",
        },
    )
    .await?;
    emit_events(conn, &order, standing.first_order).await?;
    let order = if status == Status::Completed && p.kind == ProductKind::Virtual {
        orders::issue_code(conn, order.id).await?
    } else {
        order
    };
    Ok((order, StockTake { product_id: p.id, quantity: q }))
}

/// Where the goods go: the member's address `address_id`, which physical goods need.
async fn shipping_to(
    conn: &mut PgConnection,
    member_id: i64,
    p: &Product,
    address_id: Option<i64>,
) -> Result<Option<serde_json::Value>> {
    match (p.kind, address_id) {
        (ProductKind::Physical, None) => {
            Err(Error::invalid_field("address_id", "physical goods need a shipping address"))
        }
        (_, Some(id)) => Ok(Some(address(conn, member_id, id).await?)),
        _ => Ok(None),
    }
}

/// The member's account row (the member row for shared points, whose account is in the
/// alliance schema) serializes this member's redemptions, so the per-member limit cannot
/// be passed by racing.
async fn lock_spending(conn: &mut PgConnection, member_id: i64, p: &Product, shared: bool) -> Result<()> {
    if shared {
        sqlx::query("SELECT 1 FROM members WHERE id = $1 FOR UPDATE").bind(member_id).execute(&mut *conn).await?;
    } else {
        let lock = async |conn: &mut PgConnection| {
            sqlx::query("SELECT 1 FROM accounts WHERE member_id = $1 AND currency = $2 FOR UPDATE")
                .bind(member_id)
                .bind(&p.currency)
                .execute(conn)
                .await
        };
        // The account exists but for a member's first points of this currency.
        if lock(&mut *conn).await?.rows_affected() == 0 {
            post::ensure_account(conn, member_id, &p.currency).await?;
            lock(&mut *conn).await?;
        }
    }
    Ok(())
}

/// What the member's past decides about this redemption, read in one statement after
/// `lock_spending` (so concurrent redemptions of one member see each other's orders).
struct Standing {
    /// The threshold of the member's level (0 without one).
    level: i64,
    /// The member's live orders of this product (units).
    had: i64,
    /// The member has no order yet: this one is the first redemption.
    first_order: bool,
}

impl Standing {
    async fn read(conn: &mut PgConnection, member_id: i64, p: &Product) -> Result<Standing> {
        let (level, had, first_order): (i64, i64, bool) = sqlx::query_as(
            "SELECT coalesce(l.threshold, 0), \
                 (SELECT coalesce(sum(o.quantity), 0)::bigint FROM orders o WHERE o.product_id = $2 \
                  AND o.member_id = m.id AND o.status NOT IN ('cancelled', 'refunded')), \
                 NOT EXISTS (SELECT 1 FROM orders o WHERE o.member_id = m.id) \
             FROM members m LEFT JOIN levels l ON l.id = m.level_id WHERE m.id = $1",
        )
        .bind(member_id)
        .bind(p.id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| Error::not_found("member_not_found", "no such member"))?;
        Ok(Standing { level, had, first_order })
    }

    /// Products above the member's level are refused, and so is passing the product's
    /// per-member limit (counting the member's live orders of it).
    fn check(&self, p: &Product, q: i64) -> Result<()> {
        if self.level < p.min_level_threshold {
            return Err(Error::forbidden("level_required", "this product is for members of a higher level"));
        }
        let Some(limit) = p.per_member_limit else { return Ok(()) };
        if self.had + q > i64::from(limit) {
            let had = self.had;
            return Err(Error::conflict("limit_reached", format!("at most {limit} per member; you have {had}")));
        }
        Ok(())
    }
}

/// What an order costs.
struct Price {
    points: i64,
    cash: i64,
    /// Paid in the alliance's shared points.
    shared: bool,
}

/// How an order was paid, or is to be.
struct Paid {
    status: Status,
    debit_entry_id: Option<EntryId>,
    alliance_entry_id: Option<EntryId>,
    hold_id: Option<HoldId>,
    pay_deadline: Option<DateTime<Utc>>,
}

/// Takes the points now (shared or the mall's own), or, for points + cash, holds them
/// until the cash part is paid (the order waits for payment until its deadline).
async fn pay(
    conn: &mut PgConnection,
    tenant: &Tenant,
    member_id: i64,
    p: &Product,
    price: Price,
    order_no: &str,
    now: DateTime<Utc>,
) -> Result<Paid> {
    let Price { points, cash, shared } = price;
    let source = Source::new(SourceKind::Order, format!("member:{member_id}"))
        .reference(order_no.to_string())
        .memo(p.name.clone());
    let paid = |debit_entry_id, alliance_entry_id| Paid {
        status: Status::after_payment(p.kind),
        debit_entry_id,
        alliance_entry_id,
        hold_id: None,
        pay_deadline: None,
    };
    if shared && cash == 0 {
        let entry = book::debit(conn, tenant, member_id, &p.currency, points, Reason::Spend, &source, now).await?;
        return Ok(paid(None, Some(entry.id)));
    }
    if cash == 0 {
        let (entry, _) = post::debit(conn, member_id, &p.currency, points, Reason::Spend, &source, now).await?;
        return Ok(paid(Some(entry.id), None));
    }
    let hold_id = if points > 0 {
        let h = NewHold {
            member_id,
            currency: p.currency.clone(),
            amount: points,
            reference: order_no.to_string(),
            ttl_secs: Some(tenant.settings.hold_ttl_secs + HOLD_MARGIN_SECS),
        };
        Some(holds::create(conn, tenant, &h, &format!("member:{member_id}"), now).await?.id)
    } else {
        None
    };
    let pay_deadline = Some(now + Duration::seconds(tenant.settings.hold_ttl_secs));
    Ok(Paid { status: Status::PendingPayment, debit_entry_id: None, alliance_entry_id: None, hold_id, pay_deadline })
}

/// The stock a redemption still has to take, as the last step of its transaction.
#[must_use = "a redemption is not complete until its stock is taken in the same transaction"]
pub struct StockTake {
    product_id: ProductId,
    quantity: i64,
}

impl StockTake {
    /// Takes the stock (`stock::take`: reserved on the side, consumed in `conn`); it
    /// comes last, just before the commit. `sold_out` when too little is left: the
    /// caller's transaction must then roll back.
    pub async fn apply(self, db: &Db, tenant: &Tenant, conn: &mut PgConnection) -> Result<()> {
        stock::take(db, tenant, conn, self.product_id, self.quantity).await
    }
}

async fn address(conn: &mut PgConnection, member_id: i64, id: i64) -> Result<serde_json::Value> {
    let row: Option<(String, String, String, String)> =
        sqlx::query_as("SELECT name, phone, region, detail FROM addresses WHERE id = $1 AND member_id = $2")
            .bind(id)
            .bind(member_id)
            .fetch_optional(conn)
            .await?;
    let (name, phone, region, detail) =
        row.ok_or_else(|| Error::invalid_field("address_id", "not one of your addresses"))?;
    Ok(serde_json::json!({"name": name, "phone": phone, "region": region, "detail": detail}))
}

/// The mall's own events of a new order, in one statement: `first_redemption` for the
/// member's first, and `order_completed` when it is complete at once.
async fn emit_events(conn: &mut PgConnection, order: &orders::Order, first_order: bool) -> Result<()> {
    let mut events = Vec::new();
    if first_order {
        let payload = serde_json::json!({"order_id": order.id, "product_id": order.product_id});
        events.push(Emitted { kind: "first_redemption", member_id: order.member_id, payload });
    }
    if order.status == Status::Completed {
        events.push(orders::completed_event(order));
    }
    crate::outbox::emit_all(conn, events).await
}
