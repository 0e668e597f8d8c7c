//! Applies the effects of an event's rules inside the event's transaction. Every entry
//! names the rule, script version and parameter version that produced it.

use chrono::{DateTime, Duration, Utc};
use scripting::{Effect, MemberInput};
use sqlx::PgConnection;

use crate::directory::Tenant;
use crate::error::{Error, Result};
use crate::ledger::batch;
use crate::ledger::currencies::{self, Currency};
use crate::ledger::locks::{self, NewLockGrant};
use crate::ledger::post::{self, LotPart};
use crate::ledger::{Reason, Source, SourceKind};

/// Who produced the effects being applied.
pub struct Producer<'a> {
    pub rule_id: i64,
    /// An alliance-wide rule: its entries name it `alliance-rule:<id>`.
    pub alliance: bool,
    pub version: i32,
    pub params_version: i32,
    pub event_key: &'a str,
}

pub(super) fn source(p: &Producer<'_>, memo: &str) -> Source {
    let name = if p.alliance { format!("alliance-rule:{}", p.rule_id) } else { format!("rule:{}", p.rule_id) };
    let mut s = Source::new(SourceKind::Rule, name).reference(p.event_key).memo(memo);
    s.rule = Some(crate::ledger::RuleRef { id: p.rule_id, version: p.version, params_version: p.params_version });
    s
}

/// The member `depth` referral levels up (0 = the member).
pub(super) fn target(member: &MemberInput, depth: i64) -> Option<i64> {
    if depth == 0 { Some(member.id) } else { member.referrers.get(usize::try_from(depth - 1).ok()?).copied() }
}

/// Applies one rule's effects. Effects aimed at a referrer who does not exist are skipped.
pub async fn apply(
    conn: &mut PgConnection,
    tenant: &Tenant,
    member: &MemberInput,
    producer: &Producer<'_>,
    effects: &[Effect],
    now: DateTime<Utc>,
) -> Result<()> {
    for effect in effects {
        match effect {
            Effect::Award { currency, amount, memo, expires_in_days } => {
                credit(conn, tenant, member.id, currency, *amount, *expires_in_days, &source(producer, memo), now)
                    .await?;
            }
            Effect::AwardReferrer { depth, currency, amount, memo } => {
                if let Some(to) = target(member, *depth) {
                    credit(conn, tenant, to, currency, *amount, None, &source(producer, memo), now).await?;
                }
            }
            Effect::Deduct { currency, amount, memo } => {
                if !currencies::get(conn, currency).await?.spendable {
                    return Err(Error::invalid_field("currency", format!("{currency} cannot be spent")));
                }
                post::debit(conn, member.id, currency, *amount, Reason::Spend, &source(producer, memo), now).await?;
            }
            Effect::Lock { currency, total, per_day, memo } => {
                let g = NewLockGrant {
                    member_id: member.id,
                    currency: currency.clone(),
                    total: *total,
                    per_day: *per_day,
                    memo: memo.clone(),
                };
                locks::grant(conn, tenant, &g, &source(producer, memo), now).await?;
            }
            Effect::Accelerate { depth, amount, memo } => {
                if let Some(who) = target(member, *depth)
                    && let Some(grant) = locks::oldest_open(conn, who).await?
                {
                    locks::accelerate(conn, tenant, grant, *amount, &source(producer, memo), now).await?;
                }
            }
            Effect::SetCounter { name, value } => {
                sqlx::query(
                    "INSERT INTO member_counters (member_id, name, value) VALUES ($1, $2, $3) \
                     ON CONFLICT (member_id, name) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
                )
                .bind(member.id)
                .bind(name)
                .bind(value)
                .execute(&mut *conn)
                .await?;
            }
            Effect::Tag { name } => {
                sqlx::query("INSERT INTO member_tags (member_id, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(member.id)
                    .bind(name)
                    .execute(&mut *conn)
                    .await?;
            }
            Effect::Deny { .. } => {}
        }
    }
    Ok(())
}

/// Applies an alliance-wide rule's effects: awards of the alliance's shared currency
/// only (anything else was refused when the rule was saved, and is skipped here), each
/// in its own savepoint, charged to this mall's issuing budget: an award the budget does
/// not cover (`budget_exhausted`) or that the member cannot hold yet (no alliance
/// identity without a proven phone or e-mail) is left out; the event and the mall's own
/// awards stand.
pub async fn apply_alliance(
    conn: &mut PgConnection,
    tenant: &Tenant,
    currencies: &std::collections::HashMap<String, Currency>,
    member: &MemberInput,
    producer: &Producer<'_>,
    effects: &[Effect],
    now: DateTime<Utc>,
) -> Result<()> {
    use sqlx::Connection;
    let shared = |c: &str| currencies.get(c).is_some_and(|c| c.shared);
    for effect in effects {
        let (to, currency, amount, days, memo) = match effect {
            Effect::Award { currency, amount, memo, expires_in_days } if shared(currency) => {
                (Some(member.id), currency, *amount, *expires_in_days, memo)
            }
            Effect::AwardReferrer { depth, currency, amount, memo } if shared(currency) => {
                (target(member, *depth), currency, *amount, None, memo)
            }
            Effect::Deny { .. } => continue,
            other => {
                tracing::warn!(rule = producer.rule_id, effect = ?other, "an alliance rule's effect other than a shared award is skipped");
                continue;
            }
        };
        let Some(to) = to else { continue };
        let mut sp = conn.begin().await?;
        match credit(&mut sp, tenant, to, currency, amount, days, &source(producer, memo), now).await {
            Ok(()) => sp.commit().await?,
            Err(e @ (Error::Database(_) | Error::Internal(_))) => return Err(e),
            // `budget_exhausted`, or a member who cannot hold shared points yet (no proven
            // phone or e-mail): that award is left out, the mall's own rules stand.
            Err(e) => {
                sp.rollback().await?;
                tracing::info!(tenant = %tenant.slug, rule = producer.rule_id, error = %e, "an alliance award was left out");
            }
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn credit(
    conn: &mut PgConnection,
    tenant: &Tenant,
    member_id: i64,
    currency: &str,
    amount: i64,
    expires_in_days: Option<i64>,
    source: &Source,
    now: DateTime<Utc>,
) -> Result<()> {
    let cur = currencies::get(conn, currency).await?;
    let expires_at = expiry(tenant, &cur, expires_in_days, now);
    let parts = vec![LotPart { amount, expires_at }];
    if cur.shared {
        // The alliance's currency: written in its ledger and charged to this mall's
        // issuing budget (a budget that does not cover it fails the event).
        let item = crate::ledger::post::CreditItem {
            member_id,
            currency: currency.to_string(),
            parts,
            source: source.clone(),
        };
        crate::alliance::book::credit(conn, tenant, item, Reason::Earn, now).await?;
        return Ok(());
    }
    batch::credit(conn, member_id, currency, &parts, Reason::Earn, source, now).await?;
    Ok(())
}

/// When an award expires: in the rule's days if it says, else by the mall's policy for
/// currencies that expire.
pub(super) fn expiry(
    tenant: &Tenant,
    currency: &Currency,
    expires_in_days: Option<i64>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    match expires_in_days {
        Some(d) => Some(now + Duration::days(d)),
        None => tenant.settings.default_expiry(currency.expires, now),
    }
}
