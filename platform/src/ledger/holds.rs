//! Points as payment for a partner's checkout (L9): hold → capture (fully or partly) or
//! void; holds expire after a TTL; captured points can be refunded. Held points are
//! debited at once (with allocations), so a refund or release returns them to the
//! original lots where those have not expired.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use super::keeper::Keeper;
use super::post;
use super::{Reason, Source, SourceKind, bounds};
use crate::db::Db;
use crate::directory::Tenant;
use crate::error::{Error, Result};
use crate::ids::{EntryId, HoldId};

/// Where a hold is: points held for a checkout, then captured, voided or expired (text
/// under the CHECK of tenant migration 0002; an unknown stored value fails the read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::Type, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum HoldStatus {
    Held,
    Captured,
    Voided,
    Expired,
}

impl HoldStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Held => "held",
            Self::Captured => "captured",
            Self::Voided => "voided",
            Self::Expired => "expired",
        }
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Hold {
    pub id: HoldId,
    pub member_id: i64,
    pub currency: String,
    pub amount: i64,
    pub captured: i64,
    pub refunded: i64,
    pub status: HoldStatus,
    pub reference: String,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, member_id, currency, amount, captured, refunded, status, reference, expires_at, created_at";

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewHold {
    pub member_id: i64,
    #[serde(default = "crate::ledger::points_currency")]
    #[schema(value_type = super::currencies::CurrencyCode)]
    pub currency: String,
    #[schema(value_type = crate::limits::ledger::Amount)]
    pub amount: i64,
    /// The partner's order or checkout reference.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub reference: String,
    /// Lifetime in seconds (10 seconds to 7 days); the mall's `hold_ttl_secs` by default.
    #[serde(default)]
    #[schema(minimum = 10, maximum = 604800)]
    pub ttl_secs: Option<i64>,
}

pub async fn create(
    conn: &mut PgConnection,
    tenant: &Tenant,
    h: &NewHold,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Hold> {
    let ttl = h.ttl_secs.unwrap_or(tenant.settings.hold_ttl_secs);
    if !(10..=7 * 86_400).contains(&ttl) {
        return Err(Error::invalid_field("ttl_secs", "between 10 seconds and 7 days"));
    }
    if h.reference.chars().count() > 200 {
        return Err(Error::invalid_field("reference", "at most 200 characters"));
    }
    if !super::currencies::get(conn, &h.currency).await?.spendable {
        return Err(Error::invalid_field("currency", "this currency cannot be spent"));
    }
    let source = Source::new(SourceKind::Hold, actor).reference(h.reference.clone());
    // Shared points are held in the alliance's ledger; the hold itself is the mall's.
    let k = Keeper::existing(conn, tenant, h.member_id, &h.currency).await?;
    let (member, source) = (k.member(h.member_id), k.source(&source));
    let (entry, _) = k
        .within(conn, async |c| post::debit(c, member, &h.currency, h.amount, Reason::Hold, &source, now).await)
        .await?;
    let entry = k.show_one(conn, h.member_id, entry).await?;
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO holds (member_id, currency, amount, status, entry_id, alliance_entry_id, reference, expires_at) \
         VALUES ($1, $2, $3, 'held', $4, $5, $6, $7) RETURNING {COLUMNS}"
    )))
    .bind(h.member_id)
    .bind(&h.currency)
    .bind(h.amount)
    .bind((!k.is_shared()).then_some(entry.id))
    .bind(k.is_shared().then_some(entry.id))
    .bind(&h.reference)
    .bind(now + Duration::seconds(ttl))
    .fetch_one(conn)
    .await?)
}

/// Locks a hold row (after its account, the order every ledger write uses); with the
/// ledger its points are kept in.
async fn lock(conn: &mut PgConnection, tenant: &Tenant, id: HoldId) -> Result<(Hold, EntryId, Keeper)> {
    let (member_id, currency): (i64, String) = sqlx::query_as("SELECT member_id, currency FROM holds WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| Error::not_found("hold_not_found", "no such hold"))?;
    let k = Keeper::existing(conn, tenant, member_id, &currency).await?;
    let member = k.member(member_id);
    k.within(conn, async |c| {
        sqlx::query("SELECT 1 FROM accounts WHERE member_id = $1 AND currency = $2 FOR UPDATE")
            .bind(member)
            .bind(&currency)
            .execute(c)
            .await?;
        Ok(())
    })
    .await?;
    let row: (EntryId,) =
        sqlx::query_as("SELECT coalesce(entry_id, alliance_entry_id) FROM holds WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_one(&mut *conn)
            .await?;
    let hold = get(conn, id).await?;
    Ok((hold, row.0, k))
}

/// Gives back `amount` of the hold's debit `entry_id` to its lots, in its ledger.
#[allow(clippy::too_many_arguments)]
async fn give_back(
    conn: &mut PgConnection,
    k: &Keeper,
    h: &Hold,
    entry_id: EntryId,
    amount: i64,
    reason: Reason,
    source: &Source,
    now: DateTime<Utc>,
) -> Result<()> {
    let source = k.source(source);
    let (entry, _) = k
        .within(conn, async |c| {
            let back = post::return_to_lots(c, entry_id, amount, reason, &source, now).await?;
            // A shared hold of an identity merged since by a link: what came back moves on.
            if let (true, Some(e)) = (k.is_shared(), &back.0) {
                super::merged::pass_on_merged(c, e.member_id, now).await?;
            }
            Ok(back)
        })
        .await?;
    if let Some(e) = entry {
        k.show(conn, h.member_id, vec![e]).await?;
    }
    Ok(())
}

pub async fn get(conn: &mut PgConnection, id: HoldId) -> Result<Hold> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM holds WHERE id = $1")))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| Error::not_found("hold_not_found", "no such hold"))
}

fn state_error(h: &Hold, wanted: HoldStatus) -> Error {
    let (is, wanted) = (h.status.as_str(), wanted.as_str());
    Error::conflict("hold_state", format!("the hold is {is}; this needs it {wanted}"))
}

async fn set(conn: &mut PgConnection, id: HoldId, status: HoldStatus, captured: i64, refunded: i64) -> Result<Hold> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE holds SET status = $2, captured = $3, refunded = $4, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(status)
    .bind(captured)
    .bind(refunded)
    .fetch_one(conn)
    .await?)
}

/// Captures `amount` (at most the held amount); the rest goes back to the member.
pub async fn capture(
    conn: &mut PgConnection,
    tenant: &Tenant,
    id: HoldId,
    amount: i64,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Hold> {
    post::check_amount("amount", amount)?;
    let (h, entry_id, k) = lock(conn, tenant, id).await?;
    if h.status != HoldStatus::Held {
        return Err(state_error(&h, HoldStatus::Held));
    }
    if h.expires_at <= now {
        return Err(Error::conflict("hold_expired", "the hold has expired; its points were released"));
    }
    if amount > h.amount {
        return Err(Error::invalid_field("amount", format!("at most the held {}", h.amount)));
    }
    if k.is_shared() {
        // Settlement counts shared points as redeemed when they are spent: the held
        // points go back to their lots and the captured amount is spent from them at
        // once (the same lots, soonest-expiring first), so a hold counts as redeemed
        // only once captured and a released hold as nothing. Refunds return to the spend.
        let source = Source::new(SourceKind::Hold, actor).reference(format!("hold:{id}")).memo("hold captured");
        give_back(conn, &k, &h, entry_id, h.amount, Reason::HoldReturn, &source, now).await?;
        let (member, source) = (k.member(h.member_id), k.source(&source.reference(h.reference.clone())));
        let (spend, _) = k
            .within(conn, async |c| post::debit(c, member, &h.currency, amount, Reason::Spend, &source, now).await)
            .await?;
        let spend = k.show_one(conn, h.member_id, spend).await?;
        sqlx::query("UPDATE holds SET alliance_entry_id = $2 WHERE id = $1")
            .bind(id)
            .bind(spend.id)
            .execute(&mut *conn)
            .await?;
    } else if amount < h.amount {
        let source =
            Source::new(SourceKind::Hold, actor).reference(format!("hold:{id}")).memo("uncaptured part of a hold");
        give_back(conn, &k, &h, entry_id, h.amount - amount, Reason::HoldReturn, &source, now).await?;
    }
    set(conn, id, HoldStatus::Captured, amount, 0).await
}

/// Releases a held amount back to the member (`voided`, or `expired` from the job).
async fn release(
    conn: &mut PgConnection,
    tenant: &Tenant,
    id: HoldId,
    status: HoldStatus,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Hold> {
    let (h, entry_id, k) = lock(conn, tenant, id).await?;
    if h.status != HoldStatus::Held {
        return Err(state_error(&h, HoldStatus::Held));
    }
    let memo = format!("hold {}", status.as_str());
    let source = Source::new(SourceKind::Hold, actor).reference(format!("hold:{id}")).memo(memo);
    give_back(conn, &k, &h, entry_id, h.amount, Reason::HoldReturn, &source, now).await?;
    set(conn, id, status, 0, 0).await
}

pub async fn void(
    conn: &mut PgConnection,
    tenant: &Tenant,
    id: HoldId,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Hold> {
    release(conn, tenant, id, HoldStatus::Voided, actor, now).await
}

/// Refunds `amount` of a captured hold to the original lots (unexpired ones).
pub async fn refund(
    conn: &mut PgConnection,
    tenant: &Tenant,
    id: HoldId,
    amount: i64,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Hold> {
    post::check_amount("amount", amount)?;
    let (h, entry_id, k) = lock(conn, tenant, id).await?;
    if h.status != HoldStatus::Captured {
        return Err(state_error(&h, HoldStatus::Captured));
    }
    if amount > h.captured - h.refunded {
        return Err(Error::invalid_field(
            "amount",
            format!("at most the {} not yet refunded", h.captured - h.refunded),
        ));
    }
    let source = Source::new(SourceKind::Hold, actor).reference(format!("hold:{id}")).memo("refund");
    give_back(conn, &k, &h, entry_id, amount, Reason::Refund, &source, now).await?;
    set(conn, id, HoldStatus::Captured, h.captured, h.refunded + amount).await
}

/// Expires every hold past its TTL at `now`, returning its points.
pub async fn expire_due(db: &Db, tenant: &Tenant, now: DateTime<Utc>) -> Result<u64> {
    let mut n = 0;
    loop {
        let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
        let due: Vec<HoldId> = sqlx::query_scalar(
            "SELECT id FROM holds WHERE status = 'held' AND expires_at <= $1 ORDER BY expires_at LIMIT $2",
        )
        .bind(now)
        .bind(bounds::JOB_BATCH)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        if due.is_empty() {
            return Ok(n);
        }
        for id in due {
            let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
            match release(&mut tx, tenant, id, HoldStatus::Expired, "system:holds", now).await {
                Ok(_) => {
                    tx.commit().await?;
                    n += 1;
                }
                // Captured or voided meanwhile.
                Err(Error::Conflict { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
}
