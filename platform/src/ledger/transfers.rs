//! Member-to-member transfers (L6) within the mall's limits. Both sides are written in
//! one transaction; the receiver's lots keep the expiry of the lots the points came
//! from, so a transfer never extends the life of points.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use super::batch;
use super::keeper::Keeper;
use super::post::{self, LotPart};
use super::{Entry, Reason, Source, SourceKind};
use crate::directory::Tenant;
use crate::error::{Error, Result};
use crate::ids::LotId;

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    /// The receiver: phone number or e-mail of a member of this mall (for the alliance's
    /// shared points, of any mall of the alliance).
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
    /// The receiver in this mall; null for a member of another mall of the alliance
    /// (shared points).
    pub to_member_id: Option<i64>,
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

/// Who sends and who receives, in the ledger that keeps the currency: the mall's own, or
/// the alliance's for its shared currency (`alliance::transfers::parties`), where the
/// receiver may be a member of any mall of the alliance.
#[derive(Debug, Clone)]
pub struct Parties {
    pub keeper: Keeper,
    /// The sender, a member of this mall.
    pub from: i64,
    /// The receiver as the keeping ledger knows them (an identity in the alliance's).
    pub to: i64,
    /// The receiver in this mall, if they are a member of it.
    pub to_local: Option<i64>,
}

impl Parties {
    /// Both in this mall's own ledger.
    pub fn in_mall(from: i64, to: i64) -> Self {
        Self { keeper: Keeper::Mall, from, to, to_local: Some(to) }
    }
}

pub async fn transfer(
    conn: &mut PgConnection,
    tenant: &Tenant,
    parties: &Parties,
    req: &TransferRequest,
    now: DateTime<Utc>,
) -> Result<Transfer> {
    check_request(tenant, req)?;
    let k = &parties.keeper;
    let (from, to) = (k.member(parties.from), parties.to);
    if from == to {
        return Err(Error::invalid_field("to", "you cannot transfer to yourself"));
    }
    let currency = super::currencies::get(conn, &req.currency).await?;
    if !currency.transferable {
        return Err(Error::invalid_field("currency", "this currency cannot be transferred"));
    }
    let day_start = crate::localtime::start_of_day(tenant.settings.tz(), now);
    let out = k.source(
        &Source::new(SourceKind::Transfer, format!("member:{}", parties.from))
            .reference(format!("to:{to}"))
            .memo(req.memo.clone()),
    );
    let inn = k.source(&Source::new(SourceKind::Transfer, format!("member:{}", parties.from)).memo(req.memo.clone()));
    let from_entry =
        k.within(conn, async |c| move_points(c, tenant, from, to, req, &out, inn, day_start, now).await).await?;
    let from_entry = k.show_one(conn, parties.from, from_entry).await?;
    Ok(Transfer { from_entry, to_member_id: parties.to_local, amount: req.amount, currency: req.currency.clone() })
}

/// Both sides of a transfer in the ledger selected on `conn` (`from`, `to` as it knows
/// them), within the sender's daily limit (`move_lots`).
#[allow(clippy::too_many_arguments)]
async fn move_points(
    conn: &mut PgConnection,
    tenant: &Tenant,
    from: i64,
    to: i64,
    req: &TransferRequest,
    out: &Source,
    mut inn: Source,
    day_start: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Entry> {
    let limits = &tenant.settings.transfers;
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
    .bind(day_start)
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
    inn.reference = format!("from:{from};");
    move_lots(conn, from, to, &req.currency, req.amount, out, inn, now).await
}

/// Debits `amount` of `currency` from `from` (its lots in the debit's order) and credits
/// it to `to`, in the ledger selected on `conn`, in lots that keep each drawn lot's
/// expiry and the mall that issued it (settlement charges their redemption to it).
/// `inn`'s reference gets `entry:<the debit's id>` appended. Returns the debit.
#[allow(clippy::too_many_arguments)]
pub(super) async fn move_lots(
    conn: &mut PgConnection,
    from: i64,
    to: i64,
    currency: &str,
    amount: i64,
    out: &Source,
    mut inn: Source,
    now: DateTime<Utc>,
) -> Result<Entry> {
    let (from_entry, allocations) = post::debit(conn, from, currency, amount, Reason::TransferOut, out, now).await?;
    let ids: Vec<LotId> = allocations.iter().map(|a| a.lot_id).collect();
    let lots: Vec<(LotId, Option<DateTime<Utc>>, Option<i64>)> = sqlx::query_as(
        "SELECT l.id, l.expires_at, coalesce(l.issuer_mall_id, i.mall_id) FROM lots l \
         JOIN entries i ON i.id = l.entry_id WHERE l.id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    let of = |lot: LotId| lots.iter().find(|(id, _, _)| *id == lot).copied();
    let parts: Vec<LotPart> =
        allocations.iter().map(|a| LotPart { amount: a.amount, expires_at: of(a.lot_id).and_then(|l| l.1) }).collect();
    let issuers: Vec<Option<i64>> = allocations.iter().map(|a| of(a.lot_id).and_then(|l| l.2)).collect();
    inn.reference = format!("{}entry:{}", inn.reference, from_entry.id);
    let to_entry = batch::credit(conn, to, currency, &parts, Reason::TransferIn, &inn, now).await?;
    // The lots are made in the order of the parts.
    sqlx::query(
        "UPDATE lots l SET issuer_mall_id = t.issuer \
         FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM lots WHERE entry_id = $1) o \
         JOIN unnest($2::bigint[]) WITH ORDINALITY AS t(issuer, n) ON t.n = o.n \
         WHERE l.id = o.id AND t.issuer IS NOT NULL",
    )
    .bind(to_entry.id)
    .bind(&issuers)
    .execute(&mut *conn)
    .await?;
    Ok(from_entry)
}
