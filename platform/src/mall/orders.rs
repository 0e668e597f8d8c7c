//! Orders (SPEC O3-O8): transitions with their side effects (points back to the original
//! lots, stock restored, holds captured or voided, codes issued), shipping and tracking,
//! history, reviews, timeouts (CSV export and shipping import: `order_csv`).

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use super::catalog::Product;
use super::kinds::ProductKind;
use super::order_state::{self, Action, Status};
use crate::db::Db;
use crate::directory::Tenant;
use crate::error::{Error, Result};
use crate::i18n::{Arg, Voice};
use crate::ids::{EntryId, HoldId, OrderId, ProductId};
use crate::ledger::holds::{self, HoldStatus};
use crate::ledger::{Reason, Source, SourceKind, post};
use crate::tx::TenantTx;

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Order {
    pub id: OrderId,
    pub order_no: String,
    pub member_id: i64,
    pub product_id: ProductId,
    pub product_name: String,
    pub kind: ProductKind,
    pub quantity: i32,
    pub currency: String,
    pub points_amount: i64,
    pub cash_fen: i64,
    pub status: Status,
    pub pay_deadline: Option<DateTime<Utc>>,
    pub payment_ref: Option<String>,
    pub address: Option<serde_json::Value>,
    /// The code of a virtual good, once issued.
    pub code: Option<String>,
    pub carrier: Option<String>,
    pub tracking_no: Option<String>,
    /// Status updates pushed by the logistics system: [{"status", "description", "at"}].
    pub tracking: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub const COLUMNS: &str = "id, order_no, member_id, product_id, product_name, kind, quantity, currency, points_amount, \
    cash_fen, status, pay_deadline, payment_ref, address, code, carrier, tracking_no, tracking, created_at, updated_at";

/// `PM` + date + 10 random hex digits: unguessable and sortable by day.
pub fn new_order_no(now: DateTime<Utc>) -> String {
    format!("PM{}{:010X}", now.format("%y%m%d"), rand::rng().random::<u64>() & 0xff_ffff_ffff)
}

pub struct NewOrder<'a> {
    pub order_no: &'a str,
    pub member_id: i64,
    pub product: &'a Product,
    pub quantity: i32,
    pub points: i64,
    pub cash: i64,
    pub status: Status,
    pub debit_entry_id: Option<EntryId>,
    /// The debit in the alliance ledger, for a product priced in shared points.
    pub alliance_entry_id: Option<EntryId>,
    pub hold_id: Option<HoldId>,
    pub pay_deadline: Option<DateTime<Utc>>,
    pub address: Option<serde_json::Value>,
    /// The first line of its history ("redeemed", "lottery prize").
    pub note: &'a str,
}

pub async fn insert(conn: &mut PgConnection, o: &NewOrder<'_>) -> Result<Order> {
    let actor = format!("member:{}", o.member_id);
    // The order and its first history line in one statement.
    let order: Order = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH o AS (INSERT INTO orders (order_no, member_id, product_id, product_name, kind, quantity, currency, \
             points_amount, cash_fen, status, debit_entry_id, hold_id, pay_deadline, address, alliance_entry_id) \
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING {COLUMNS}), \
         h AS (INSERT INTO order_history (order_id, from_status, to_status, actor, note) \
           SELECT id, NULL, status, $16, $17 FROM o) \
         SELECT {COLUMNS} FROM o"
    )))
    .bind(o.order_no)
    .bind(o.member_id)
    .bind(o.product.id)
    .bind(&o.product.name)
    .bind(o.product.kind)
    .bind(o.quantity)
    .bind(&o.product.currency)
    .bind(o.points)
    .bind(o.cash)
    .bind(o.status.as_str())
    .bind(o.debit_entry_id)
    .bind(o.hold_id)
    .bind(o.pay_deadline)
    .bind(&o.address)
    .bind(o.alliance_entry_id)
    .bind(&actor)
    .bind(o.note)
    .fetch_one(&mut *conn)
    .await?;
    state_changed(conn, &order, None, o.status, &actor).await?;
    Ok(order)
}

/// Records a status change of `order` (already set): its history line and the
/// `order.state_changed` webhook.
async fn history(
    conn: &mut PgConnection,
    order: &Order,
    from: Status,
    to: Status,
    actor: &str,
    note: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO order_history (order_id, from_status, to_status, actor, note) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(order.id)
    .bind(from.as_str())
    .bind(to.as_str())
    .bind(actor)
    .bind(note)
    .execute(&mut *conn)
    .await?;
    state_changed(conn, order, Some(from), to, actor).await
}

/// The `order.state_changed` webhook of a new order or a status change.
async fn state_changed(
    conn: &mut PgConnection,
    order: &Order,
    from: Option<Status>,
    to: Status,
    actor: &str,
) -> Result<()> {
    let data = serde_json::json!({"order_id": order.id, "order_no": order.order_no, "member_id": order.member_id,
        "from_status": from.map(Status::as_str), "to_status": to.as_str(), "actor": actor});
    crate::webhooks::enqueue::event(conn, "order.state_changed", data).await
}

pub async fn get(conn: &mut PgConnection, id: OrderId) -> Result<Order> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM orders WHERE id = $1")))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| Error::not_found("order_not_found", "no such order"))
}

/// An order of this member (another member's order is a 404).
pub async fn get_for_member(conn: &mut PgConnection, id: OrderId, member_id: i64) -> Result<Order> {
    let o = get(conn, id).await?;
    if o.member_id != member_id {
        return Err(Error::not_found("order_not_found", "no such order"));
    }
    Ok(o)
}

pub async fn by_no(conn: &mut PgConnection, order_no: &str) -> Result<Order> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM orders WHERE order_no = $1")))
        .bind(order_no)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| Error::not_found("order_not_found", "no such order"))
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
pub struct OrderFilter {
    #[param(value_type = Status, inline, required = false)]
    pub status: Option<String>,
    pub member_id: Option<i64>,
    pub product_id: Option<ProductId>,
    /// Created at or after (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Created before (RFC 3339).
    pub to: Option<DateTime<Utc>>,
}

pub async fn list(conn: &mut PgConnection, f: &OrderFilter, before_id: Option<i64>, limit: i64) -> Result<Vec<Order>> {
    if let Some(s) = &f.status
        && Status::parse(s).is_none()
    {
        return Err(Error::invalid_field("status", "not an order status"));
    }
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM orders WHERE ($1::text IS NULL OR status = $1) AND ($2::bigint IS NULL OR member_id = $2) \
           AND ($3::bigint IS NULL OR product_id = $3) AND ($4::timestamptz IS NULL OR created_at >= $4) \
           AND ($5::timestamptz IS NULL OR created_at < $5) AND ($6::bigint IS NULL OR id < $6) \
         ORDER BY id DESC LIMIT $7"
    )))
    .bind(&f.status)
    .bind(f.member_id)
    .bind(f.product_id)
    .bind(f.from)
    .bind(f.to)
    .bind(before_id)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Extra data some actions carry.
#[derive(Debug, Clone, Default)]
pub struct Details {
    pub carrier: Option<String>,
    pub tracking_no: Option<String>,
    pub payment_ref: Option<String>,
    pub note: String,
}

/// How an order was paid for, read (and locked) by a transition.
#[derive(sqlx::FromRow)]
struct Payment {
    status: Status,
    kind: ProductKind,
    debit_entry_id: Option<EntryId>,
    hold_id: Option<HoldId>,
    alliance_entry_id: Option<EntryId>,
}

/// A member's own move of their order (receive, cancel before shipment): 404 for an
/// order that is not theirs.
pub async fn member_act(tx: &mut TenantTx, id: OrderId, member_id: i64, action: Action) -> Result<Order> {
    get_for_member(tx, id, member_id).await?;
    let by = tx.actor().label.clone();
    transition(tx, id, action, &by, &Details::default(), Utc::now()).await
}

/// Moves an order by `action`, refusing illegal transitions, with the side effects.
pub async fn transition(
    tx: &mut TenantTx,
    id: OrderId,
    action: Action,
    actor: &str,
    details: &Details,
    now: DateTime<Utc>,
) -> Result<Order> {
    let voice = Voice::of(tx.tenant());
    let tenant = tx.tenant().clone();
    let conn: &mut PgConnection = tx;
    let row: Option<Payment> = sqlx::query_as(
        "SELECT status, kind, debit_entry_id, hold_id, alliance_entry_id FROM orders WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let paid = row.ok_or_else(|| Error::not_found("order_not_found", "no such order"))?;
    let from = paid.status;
    let to = order_state::next(from, action, paid.kind).ok_or_else(|| {
        Error::conflict("illegal_transition", format!("an order that is {} cannot be {}", from.as_str(), past(action)))
    })?;
    let order = get(conn, id).await?;
    let source =
        Source::new(SourceKind::Order, actor).reference(order.order_no.clone()).memo(format!("order {}", past(action)));
    match action {
        Action::Cancel | Action::Timeout | Action::Refund => {
            give_back(conn, &order, paid.debit_entry_id, paid.alliance_entry_id, &source, now).await?;
            if let Some(h) = paid.hold_id {
                release_hold(conn, &tenant, h, action, actor, now).await?;
            }
            // Codes of virtual goods cannot be taken back, so a refund leaves their stock.
            if action != Action::Refund || order.kind != ProductKind::Virtual {
                restore_stock(conn, &order).await?;
            }
        }
        Action::Pay => {
            if let Some(h) = paid.hold_id {
                holds::capture(conn, &tenant, h, order.points_amount, actor, now).await?;
            }
        }
        Action::Ship | Action::Receive | Action::Approve => {}
    }
    let order = set_status(conn, id, to, details).await?;
    history(conn, &order, from, to, actor, &details.note).await?;
    let status = voice.text(&format!("order-status-{}", to.as_str().replace('_', "-")), &[]);
    let body =
        voice.text("order-update-body", &[("order_no", Arg::Str(&order.order_no)), ("status", Arg::Str(&status))]);
    notify_member(conn, &voice, &order, &body).await?;
    if to == Status::Completed {
        completed(conn, &order).await?;
    }
    if action == Action::Pay && to == Status::Completed && order.kind == ProductKind::Virtual {
        return issue_code(conn, id).await;
    }
    Ok(order)
}

/// The hold behind a points + cash order when the order is cancelled, times out or is
/// refunded: a cancelled order voids a hold still held and refunds a captured one; a
/// refund returns whatever was captured and not yet refunded.
async fn release_hold(
    conn: &mut PgConnection,
    tenant: &Tenant,
    h: HoldId,
    action: Action,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let hold = holds::get(conn, h).await?;
    let open = hold.captured - hold.refunded;
    match (action, hold.status) {
        (Action::Refund, _) if open <= 0 => return Ok(()),
        (Action::Refund, _) | (_, HoldStatus::Captured) => {
            holds::refund(conn, tenant, h, open, actor, now).await?;
        }
        (_, HoldStatus::Held) => {
            holds::void(conn, tenant, h, actor, now).await?;
        }
        (_, HoldStatus::Voided | HoldStatus::Expired) => {}
    }
    Ok(())
}

/// Writes an order's new state with the shipping and payment details a transition
/// brings (a detail not sent keeps its value).
async fn set_status(conn: &mut PgConnection, id: OrderId, to: Status, details: &Details) -> Result<Order> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE orders SET status = $2, carrier = coalesce($3, carrier), tracking_no = coalesce($4, tracking_no), \
             payment_ref = coalesce($5, payment_ref), updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(to.as_str())
    .bind(&details.carrier)
    .bind(&details.tracking_no)
    .bind(&details.payment_ref)
    .fetch_one(&mut *conn)
    .await?)
}

/// Returns the points of a debited order to the lots they came from, in the merchant's
/// ledger or the alliance's.
async fn give_back(
    conn: &mut PgConnection,
    order: &Order,
    debit_entry_id: Option<EntryId>,
    alliance_entry_id: Option<EntryId>,
    source: &Source,
    now: DateTime<Utc>,
) -> Result<()> {
    if order.points_amount == 0 {
        return Ok(());
    }
    if let Some(entry) = debit_entry_id {
        post::return_to_lots(conn, entry, order.points_amount, Reason::Refund, source, now).await?;
    }
    if let Some(entry) = alliance_entry_id {
        crate::alliance::book::return_to_lots(conn, order.member_id, entry, order.points_amount, source, now).await?;
    }
    Ok(())
}

fn past(a: Action) -> &'static str {
    match a {
        Action::Pay => "paid",
        Action::Approve => "approved",
        Action::Ship => "shipped",
        Action::Receive => "received",
        Action::Cancel => "cancelled",
        Action::Timeout => "timed out",
        Action::Refund => "refunded",
    }
}

async fn restore_stock(conn: &mut PgConnection, o: &Order) -> Result<()> {
    sqlx::query(
        "UPDATE products SET stock = stock + $2, redeemed_count = greatest(redeemed_count - $2, 0) WHERE id = $1",
    )
    .bind(o.product_id)
    .bind(i64::from(o.quantity))
    .execute(&mut *conn)
    .await?;
    super::catalog::check_low_stock(conn, o.product_id).await
}

async fn notify_member(conn: &mut PgConnection, voice: &Voice, o: &Order, body: &str) -> Result<()> {
    sqlx::query("INSERT INTO messages (member_id, kind, title, body) VALUES ($1, 'order_update', $2, $3)")
        .bind(o.member_id)
        .bind(voice.text("order-update-title", &[("order_no", Arg::Str(&o.order_no))]))
        .bind(body)
        .execute(conn)
        .await?;
    Ok(())
}

/// Issues the next free code of the pool to a virtual order.
pub async fn issue_code(conn: &mut PgConnection, order_id: OrderId) -> Result<Order> {
    let code: Option<String> = sqlx::query_scalar(
        "UPDATE product_codes SET issued_order_id = $1 WHERE id = ( \
             SELECT c.id FROM product_codes c JOIN orders o ON o.product_id = c.product_id \
             WHERE o.id = $1 AND c.issued_order_id IS NULL ORDER BY c.id LIMIT 1 FOR UPDATE OF c SKIP LOCKED) \
         RETURNING code",
    )
    .bind(order_id)
    .fetch_optional(&mut *conn)
    .await?;
    let code = code.ok_or_else(|| Error::conflict("sold_out", "no codes are left for this product"))?;
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("UPDATE orders SET code = $2 WHERE id = $1 RETURNING {COLUMNS}")))
        .bind(order_id)
        .bind(code)
        .fetch_one(conn)
        .await?)
}

/// A status update pushed by the merchant's logistics system (O5).
pub async fn push_tracking(
    tx: &mut TenantTx,
    order_no: &str,
    status: &str,
    description: &str,
    now: DateTime<Utc>,
) -> Result<Order> {
    let voice = Voice::of(tx.tenant());
    let conn: &mut PgConnection = tx;
    if status.is_empty() || status.chars().count() > 50 || description.chars().count() > 200 {
        return Err(Error::invalid_field("status", "status 1 to 50 characters, description at most 200"));
    }
    let o = by_no(conn, order_no).await?;
    if !matches!(o.status, Status::Shipped | Status::Completed) {
        return Err(Error::conflict("illegal_transition", "tracking updates are for shipped orders"));
    }
    let event = serde_json::json!({"status": status, "description": description, "at": now});
    let order: Order = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE orders SET tracking = tracking || jsonb_build_array($2::jsonb), updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(o.id)
    .bind(event)
    .fetch_one(&mut *conn)
    .await?;
    let body =
        voice.text("shipment-update-body", &[("status", Arg::Str(status)), ("description", Arg::Str(description))]);
    notify_member(conn, &voice, &order, &body).await?;
    Ok(order)
}

/// Cancels every unpaid order past its deadline at `now` (O4): points and stock return.
pub async fn timeout_due(db: &Db, tenant: &Tenant, now: DateTime<Utc>) -> Result<u64> {
    let mut n = 0;
    let system = crate::audit::Actor::system("system:orders");
    loop {
        let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
        let due: Vec<OrderId> = sqlx::query_scalar(
            "SELECT id FROM orders WHERE status = 'pending_payment' AND pay_deadline <= $1 ORDER BY pay_deadline LIMIT 200",
        )
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        if due.is_empty() {
            return Ok(n);
        }
        for id in due {
            let details = Details { note: "payment not received in time".into(), ..Details::default() };
            let done = db
                .write(tenant, &system, async |tx| {
                    transition(tx, id, Action::Timeout, "system:orders", &details, now).await
                })
                .await;
            match done {
                Ok(_) => n += 1,
                // Paid or cancelled meanwhile.
                Err(Error::Conflict { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReview {
    /// 1 to 5.
    #[schema(minimum = 1, maximum = 5)]
    pub rating: i32,
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub body: String,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Review {
    pub id: i64,
    pub order_id: OrderId,
    pub member_id: i64,
    pub product_id: ProductId,
    pub rating: i32,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

/// A review of a completed order (O8); one per order.
pub async fn review(conn: &mut PgConnection, order_id: OrderId, member_id: i64, r: &NewReview) -> Result<Review> {
    let mut v = crate::error::Validator::new();
    v.check((1..=5).contains(&r.rating), "rating", "1 to 5");
    v.check(r.body.chars().count() <= 2000, "body", "at most 2000 characters");
    v.finish()?;
    let o = get_for_member(conn, order_id, member_id).await?;
    if o.status != Status::Completed {
        return Err(Error::conflict("illegal_transition", "only completed orders can be reviewed"));
    }
    let review: Review = sqlx::query_as(
        "INSERT INTO reviews (order_id, member_id, product_id, rating, body) VALUES ($1, $2, $3, $4, $5) \
         RETURNING id, order_id, member_id, product_id, rating, body, created_at",
    )
    .bind(o.id)
    .bind(member_id)
    .bind(o.product_id)
    .bind(r.rating)
    .bind(r.body.trim())
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| {
        crate::error::on_unique(
            e,
            "reviews_order_id_key",
            Error::conflict("already_reviewed", "this order has a review"),
        )
    })?;
    let payload = serde_json::json!({
        "order_id": review.order_id, "product_id": review.product_id, "rating": review.rating,
        "has_text": !review.body.is_empty(),
    });
    crate::outbox::emit(conn, "review_posted", member_id, payload).await?;
    Ok(review)
}

/// Emits `order_completed` for a mall order that just reached `completed`.
pub(crate) async fn completed(conn: &mut PgConnection, o: &Order) -> Result<()> {
    crate::outbox::emit_all(conn, vec![completed_event(o)]).await
}

/// The `order_completed` event of a mall order that reached `completed`.
pub(crate) fn completed_event(o: &Order) -> crate::outbox::Emitted<'static> {
    let payload = serde_json::json!({
        "source": "mall", "order_id": o.id, "order_no": o.order_no, "product_id": o.product_id,
        "currency": o.currency, "points_amount": o.points_amount, "cash_fen": o.cash_fen,
    });
    crate::outbox::Emitted { kind: "order_completed", member_id: o.member_id, payload }
}
