//! Member-to-member transfers (L6) within the mall's limits. Both sides are written in
//! one transaction; the receiver's lots keep the expiry of the lots the points came
//! from, so a transfer never extends the life of points.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use super::batch;
use super::post::{self, LotPart};
use super::{Entry, Reason, Source, SourceKind};
use crate::directory::Tenant;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    /// The receiver: phone number or e-mail of a member of this mall.
    #[schema(value_type = crate::auth::identifier::PhoneOrEmail)]
    pub to: String,
    /// Within the mall's `transfers` settings (`min` to `max`; 1 to 100,000 by default).
    #[schema(value_type = crate::limits::ledger::Amount)]
    pub amount: i64,
    #[serde(default = "crate::ledger::points_currency")]
    #[schema(value_type = super::currencies::CurrencyCode)]
    pub currency: String,
    #[serde(default)]
    #[schema(max_length = 100)]
    pub memo: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Transfer {
    pub from_entry: Entry,
    pub to_member_id: i64,
    pub amount: i64,
    pub currency: String,
}

/// Checks what can be checked without the receiver: done before the receiver is looked
/// up, so a transfer that would be refused anyway (0 points, say) does not tell whether
/// a phone belongs to a member.
pub fn check_request(tenant: &Tenant, req: &TransferRequest) -> Result<()> {
    let limits = &tenant.settings.transfers;
    if !limits.enabled {
        return Err(Error::forbidden("transfers_disabled", "this mall does not allow transfers"));
    }
    if !(limits.min..=limits.max).contains(&req.amount) {
        return Err(Error::invalid_field("amount", format!("between {} and {}", limits.min, limits.max)));
    }
    if req.memo.chars().count() > 100 {
        return Err(Error::invalid_field("memo", "at most 100 characters"));
    }
    Ok(())
}

pub async fn transfer(
    conn: &mut PgConnection,
    tenant: &Tenant,
    from: i64,
    to: i64,
    req: &TransferRequest,
    now: DateTime<Utc>,
) -> Result<Transfer> {
    check_request(tenant, req)?;
    let limits = &tenant.settings.transfers;
    if from == to {
        return Err(Error::invalid_field("to", "you cannot transfer to yourself"));
    }
    let currency = super::currencies::get(conn, &req.currency).await?;
    if !currency.transferable {
        return Err(Error::invalid_field("currency", "this currency cannot be transferred"));
    }
    post::ensure_account(conn, from, &req.currency).await?;
    post::ensure_account(conn, to, &req.currency).await?;
    // Both accounts, in id order, so two opposite transfers cannot deadlock.
    sqlx::query("SELECT 1 FROM accounts WHERE member_id = ANY($1) AND currency = $2 ORDER BY member_id FOR UPDATE")
        .bind([from.min(to), from.max(to)])
        .bind(&req.currency)
        .execute(&mut *conn)
        .await?;
    let sent_today: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(-amount), 0)::bigint FROM entries WHERE member_id = $1 AND currency = $2 \
         AND reason = 'transfer_out' AND created_at >= $3",
    )
    .bind(from)
    .bind(&req.currency)
    .bind(crate::localtime::start_of_day(tenant.settings.tz(), now))
    .fetch_one(&mut *conn)
    .await?;
    if sent_today + req.amount > limits.per_day {
        return Err(Error::Conflict {
            code: "transfer_limit",
            message: format!(
                "{} more would pass today's limit of {} (sent today: {sent_today})",
                req.amount, limits.per_day
            ),
        });
    }
    let out = Source::new(SourceKind::Transfer, format!("member:{from}"))
        .reference(format!("to:{to}"))
        .memo(req.memo.clone());
    let (from_entry, allocations) =
        post::debit(conn, from, &req.currency, req.amount, Reason::TransferOut, &out, now).await?;
    let ids: Vec<i64> = allocations.iter().map(|a| a.lot_id).collect();
    let expiries: Vec<(i64, Option<DateTime<Utc>>)> =
        sqlx::query_as("SELECT id, expires_at FROM lots WHERE id = ANY($1)").bind(&ids).fetch_all(&mut *conn).await?;
    let parts: Vec<LotPart> = allocations
        .iter()
        .map(|a| LotPart {
            amount: a.amount,
            expires_at: expiries.iter().find(|(id, _)| *id == a.lot_id).and_then(|(_, e)| *e),
        })
        .collect();
    let inn = Source::new(SourceKind::Transfer, format!("member:{from}"))
        .reference(format!("from:{from};entry:{}", from_entry.id))
        .memo(req.memo.clone());
    batch::credit(conn, to, &req.currency, &parts, Reason::TransferIn, &inn, now).await?;
    Ok(Transfer { from_entry, to_member_id: to, amount: req.amount, currency: req.currency.clone() })
}
