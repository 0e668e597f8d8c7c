//! The points layer (issue 11): credits, debits and adjustments as merchants, partners
//! and staff ask for them, above the ledger and the alliance book. `alliance::book`
//! chooses the mall's or the alliance's ledger by currency; a lot's default expiry comes
//! from `TenantSettings::default_expiry`; an adjustment is bounded per role and audited in
//! its own transaction.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::alliance::book;
use crate::error::{Error, Result};
use crate::ledger::post::{self, CreditItem, LotPart};
use crate::ledger::{Entry, Reason, Source, SourceKind, bounds, currencies};
use crate::rbac::Role;
use crate::tx::TenantTx;

/// A partner's credit of one member.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credit {
    pub member_id: i64,
    #[schema(value_type = crate::limits::ledger::Amount)]
    pub amount: i64,
    #[serde(default = "crate::ledger::points_currency")]
    #[schema(value_type = crate::ledger::currencies::CurrencyCode)]
    pub currency: String,
    #[serde(default)]
    #[schema(max_length = 500)]
    pub memo: String,
    /// The partner's reference (order number, receipt…).
    #[serde(default)]
    #[schema(max_length = 200)]
    pub reference: String,
    /// Overrides the mall's expiry policy for this credit (in the future).
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// Credits a partner's batch (1 to `bounds::BATCH_MAX`) in one go, in (member,
/// currency) order, the order accounts are locked in: all or none.
pub async fn credit_batch(tx: &mut TenantTx, mut items: Vec<Credit>, now: DateTime<Utc>) -> Result<Vec<Entry>> {
    if items.is_empty() || items.len() > bounds::BATCH_MAX {
        return Err(Error::invalid_field("items", format!("1 to {} credits", bounds::BATCH_MAX)));
    }
    for c in &items {
        post::check_amount("amount", c.amount)?;
        if c.memo.chars().count() > 500 || c.reference.chars().count() > 200 {
            return Err(Error::invalid_field("memo", "memo at most 500 characters, reference at most 200"));
        }
        if c.expires_at.is_some_and(|at| at <= now) {
            return Err(Error::invalid_field("expires_at", "must be in the future"));
        }
    }
    items.sort_by(|a, b| (a.member_id, &a.currency).cmp(&(b.member_id, &b.currency)));
    let tenant = tx.tenant().clone();
    let actor = tx.actor().label.clone();
    let mut expires: HashMap<String, bool> = HashMap::new();
    let mut out = Vec::with_capacity(items.len());
    for c in items {
        if !expires.contains_key(&c.currency) {
            expires.insert(c.currency.clone(), currencies::get(tx, &c.currency).await?.expires);
        }
        let expires_at = c.expires_at.or_else(|| tenant.settings.default_expiry(expires[&c.currency], now));
        let source = Source::new(SourceKind::Partner, actor.clone()).reference(c.reference).memo(c.memo);
        let parts = vec![LotPart { amount: c.amount, expires_at }];
        out.push(CreditItem { member_id: c.member_id, currency: c.currency, parts, source });
    }
    book::credit_many(tx, &tenant, out, Reason::Earn, now).await
}

/// A partner's debit of one member.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Debit {
    pub member_id: i64,
    #[schema(value_type = crate::limits::ledger::Amount)]
    pub amount: i64,
    #[serde(default = "crate::ledger::points_currency")]
    #[schema(value_type = crate::ledger::currencies::CurrencyCode)]
    pub currency: String,
    #[serde(default)]
    #[schema(max_length = 500)]
    pub memo: String,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub reference: String,
}

/// Spends a member's points at once, soonest-expiring first.
pub async fn debit(tx: &mut TenantTx, d: Debit, now: DateTime<Utc>) -> Result<Entry> {
    if !currencies::get(tx, &d.currency).await?.spendable {
        return Err(Error::invalid_field("currency", "this currency cannot be spent"));
    }
    let tenant = tx.tenant().clone();
    let source = Source::new(SourceKind::Partner, tx.actor().label.clone()).reference(d.reference).memo(d.memo);
    book::debit(tx, &tenant, d.member_id, &d.currency, d.amount, Reason::Spend, &source, now).await
}

/// A staff adjustment of one member's balance (L7).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Adjustment {
    #[serde(default = "crate::ledger::points_currency")]
    #[schema(value_type = crate::ledger::currencies::CurrencyCode)]
    pub currency: String,
    /// Positive to credit, negative to debit; not 0, and at most the staff role's
    /// `adjustment_limits` (setting) either way.
    #[schema(schema_with = nonzero_amount)]
    pub amount: i64,
    /// Why (required; shown to the member and in the audit log).
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub reason: String,
}

/// An adjustment's amount in the OpenAPI document: ±1 to ±`AMOUNT_MAX` (a role's
/// `adjustment_limits` may be smaller).
fn nonzero_amount() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type};
    let range = |from: i64, to: i64| {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(from))
            .maximum(Some(to))
    };
    OneOfBuilder::new()
        .item(range(1, bounds::AMOUNT_MAX))
        .item(range(-bounds::AMOUNT_MAX, -1))
        .description(Some(
            "Positive to credit, negative to debit; not 0, and at most the staff role's `adjustment_limits` \
             (setting) either way.",
        ))
        .into()
}

impl Adjustment {
    /// The reason, and an amount within what `role` may adjust (setting
    /// `adjustment_limits`).
    pub fn check(&self, tx: &TenantTx, role: Role) -> Result<()> {
        let reason = self.reason.trim();
        if reason.is_empty() || reason.chars().count() > 200 {
            return Err(Error::invalid_field("reason", "1 to 200 characters"));
        }
        if self.amount == 0 {
            return Err(Error::invalid_field("amount", "not 0"));
        }
        let max = tx.tenant().settings.adjustment_limits.for_role(role);
        // `unsigned_abs` cannot overflow (−2^63 has no i64 opposite).
        if self.amount.unsigned_abs() > max.unsigned_abs() {
            return Err(Error::invalid_field(
                "amount",
                format!("the {} role may adjust at most {max} at once (setting adjustment_limits)", role.as_str()),
            ));
        }
        Ok(())
    }
}

/// Adjusts a member's balance by hand: a credit with the mall's default expiry, or a
/// debit; audited with the entry it wrote.
pub async fn adjust(
    tx: &mut TenantTx,
    role: Role,
    member_id: i64,
    adj: Adjustment,
    now: DateTime<Utc>,
) -> Result<Entry> {
    adj.check(tx, role)?;
    let reason = adj.reason.trim().to_string();
    let tenant = tx.tenant().clone();
    let source = Source::new(SourceKind::Admin, tx.actor().label.clone()).memo(reason.clone());
    let entry = if adj.amount > 0 {
        let expires = currencies::get(tx, &adj.currency).await?.expires;
        let parts = vec![LotPart { amount: adj.amount, expires_at: tenant.settings.default_expiry(expires, now) }];
        let item = CreditItem { member_id, currency: adj.currency.clone(), parts, source };
        book::credit(tx, &tenant, item, Reason::Adjust, now).await?
    } else {
        book::debit(tx, &tenant, member_id, &adj.currency, -adj.amount, Reason::Adjust, &source, now).await?
    };
    // The control schema is on the same cluster as this tenant (main): the audit entry
    // commits with the adjustment.
    let details =
        serde_json::json!({"currency": adj.currency, "amount": adj.amount, "reason": reason, "entry_id": entry.id});
    tx.audit("points.adjust", &format!("member:{member_id}"), details).await?;
    Ok(entry)
}
