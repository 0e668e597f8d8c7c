//! Applies the effects of an event's rules inside the event's transaction. Every entry
//! names the rule, script version and parameter version that produced it.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use scripting::{Effect, MemberInput};
use sqlx::{Connection, PgConnection};

use super::evaluate::SkippedEffect;
use crate::directory::Tenant;
use crate::error::{Error, Result};
use crate::ledger::batch;
use crate::ledger::currencies::{self, Currency};
use crate::ledger::locks::{self, NewLockGrant};
use crate::ledger::post::LotPart;
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

/// Applies one rule's effects. Effects aimed at a referrer who does not exist are skipped;
/// so is an award or lock of the alliance's shared points to a member who cannot hold
/// them yet (no proven phone or e-mail: `identifier_unproven`), as an alliance rule's
/// award is — the other effects stand, and the skipped ones are returned to be recorded
/// with the event. Any other failure (an exhausted budget, too few points) fails the
/// event. Shared points are deducted from, and locked in, the alliance's ledger.
#[allow(clippy::too_many_arguments)]
pub async fn apply(
    conn: &mut PgConnection,
    tenant: &Tenant,
    currencies: &HashMap<String, Currency>,
    member: &MemberInput,
    producer: &Producer<'_>,
    effects: &[Effect],
    now: DateTime<Utc>,
) -> Result<Vec<SkippedEffect>> {
    let shared = |c: &str| currencies.get(c).is_some_and(|c| c.shared);
    let mut skipped = Vec::new();
    for (i, effect) in effects.iter().enumerate() {
        match effect {
            Effect::Award { currency, amount, memo, expires_in_days } if shared(currency) => {
                let src = source(producer, memo);
                let to = Some(member.id);
                skipped
                    .extend(shared_award(conn, tenant, i, to, currency, *amount, *expires_in_days, &src, now).await?);
            }
            Effect::AwardReferrer { depth, currency, amount, memo } if shared(currency) => {
                let src = source(producer, memo);
                let to = target(member, *depth);
                skipped.extend(shared_award(conn, tenant, i, to, currency, *amount, None, &src, now).await?);
            }
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
                deduct(conn, tenant, member.id, currency, *amount, &source(producer, memo), now).await?;
            }
            Effect::Lock { currency, total, per_day, memo } => {
                let g = NewLockGrant {
                    member_id: member.id,
                    currency: currency.clone(),
                    total: *total,
                    per_day: *per_day,
                    memo: memo.clone(),
                };
                let src = source(producer, memo);
                skipped.extend(lock(conn, tenant, i, &g, shared(currency), &src, now).await?);
            }
            Effect::Accelerate { depth, amount, memo } => {
                if let Some(who) = target(member, *depth)
                    && let Some(grant) = locks::oldest_open(conn, who).await?
                {
                    locks::accelerate(conn, tenant, grant, *amount, &source(producer, memo), now).await?;
                }
            }
            Effect::SetCounter { name, value } => set_counter(conn, member.id, name, *value).await?,
            Effect::Tag { name } => tag(conn, member.id, name).await?,
            Effect::Deny { .. } => {}
        }
    }
    Ok(skipped)
}

/// A rule's deduction (effect `Deduct`): refused for a currency that cannot be spent;
/// the alliance's shared points are taken from its ledger (`book::debit` refuses with
/// `insufficient_points` like the mall's own).
async fn deduct(
    conn: &mut PgConnection,
    tenant: &Tenant,
    member_id: i64,
    currency: &str,
    amount: i64,
    source: &Source,
    now: DateTime<Utc>,
) -> Result<()> {
    if !currencies::get(conn, currency).await?.spendable {
        return Err(Error::invalid_field("currency", format!("{currency} cannot be spent")));
    }
    crate::alliance::book::debit(conn, tenant, member_id, currency, amount, Reason::Spend, source, now).await?;
    Ok(())
}

/// A rule's lock grant (effect `i`): the mall's own currencies in its ledger; shared
/// points locked in the alliance's ledger and charged to this mall's issuing budget,
/// left out (and named), like a shared award, for a member with nothing proven.
async fn lock(
    conn: &mut PgConnection,
    tenant: &Tenant,
    i: usize,
    g: &NewLockGrant,
    shared: bool,
    src: &Source,
    now: DateTime<Utc>,
) -> Result<Option<SkippedEffect>> {
    if shared {
        let grant =
            async |c: &mut PgConnection| crate::alliance::locks::grant(c, tenant, g, src, now).await.map(|_| ());
        return unless_unproven(conn, tenant, i, grant).await;
    }
    locks::grant(conn, tenant, g, src, now).await?;
    Ok(None)
}

/// A rule's `SetCounter`: sets the member's counter `name` to `value`.
async fn set_counter(conn: &mut PgConnection, member_id: i64, name: &str, value: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO member_counters (member_id, name, value) VALUES ($1, $2, $3) \
         ON CONFLICT (member_id, name) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
    )
    .bind(member_id)
    .bind(name)
    .bind(value)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A rule's `Tag`: tags the member with `name` (once).
async fn tag(conn: &mut PgConnection, member_id: i64, name: &str) -> Result<()> {
    sqlx::query("INSERT INTO member_tags (member_id, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(member_id)
        .bind(name)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A merchant rule's award of the alliance's shared points (effect `i`), in a savepoint
/// of its own: left out (and named) when the member cannot hold shared points yet.
#[allow(clippy::too_many_arguments)]
async fn shared_award(
    conn: &mut PgConnection,
    tenant: &Tenant,
    i: usize,
    to: Option<i64>,
    currency: &str,
    amount: i64,
    expires_in_days: Option<i64>,
    source: &Source,
    now: DateTime<Utc>,
) -> Result<Option<SkippedEffect>> {
    let Some(to) = to else { return Ok(None) };
    unless_unproven(conn, tenant, i, async |c| {
        credit(c, tenant, to, currency, amount, expires_in_days, source, now).await
    })
    .await
}

/// Runs `work` (an issue of shared points, effect `i`) in a savepoint: when the member
/// cannot hold shared points yet (`identifier_unproven`: no proven phone or e-mail, so
/// no alliance identity), it is rolled back and named; any other error fails the event.
async fn unless_unproven(
    conn: &mut PgConnection,
    tenant: &Tenant,
    i: usize,
    work: impl AsyncFnOnce(&mut PgConnection) -> Result<()>,
) -> Result<Option<SkippedEffect>> {
    let mut sp = conn.begin().await?;
    match work(&mut sp).await {
        Ok(()) => {
            sp.commit().await?;
            Ok(None)
        }
        Err(e) if e.code() == UNPROVEN => {
            sp.rollback().await?;
            tracing::info!(tenant = %tenant.slug, effect = i, "a shared issue was left out: nothing proven");
            Ok(Some(SkippedEffect { effect: i, code: e.code().to_string(), message: e.to_string() }))
        }
        Err(e) => Err(e),
    }
}

/// The code of a member who cannot hold shared points yet (`alliance::identity`).
const UNPROVEN: &str = "identifier_unproven";

/// The effects a live event would leave out for `member` (a real member of the mall
/// selected on `conn`), as `apply` does: issues of the alliance's shared points (awards,
/// referrer awards, locks) to a member with no alliance identity and nothing proven to
/// make one from. For a dry run.
pub async fn left_out(conn: &mut PgConnection, member: &MemberInput, effects: &[Effect]) -> Result<Vec<SkippedEffect>> {
    let mut out = Vec::new();
    for (i, effect) in effects.iter().enumerate() {
        let (to, currency) = match effect {
            Effect::Award { currency, .. } | Effect::Lock { currency, .. } => (Some(member.id), currency),
            Effect::AwardReferrer { depth, currency, .. } => (target(member, *depth), currency),
            _ => continue,
        };
        let Some(to) = to else { continue };
        let shared: Option<bool> = sqlx::query_scalar("SELECT shared FROM currencies WHERE code = $1")
            .bind(currency)
            .fetch_optional(&mut *conn)
            .await?;
        if shared != Some(true) {
            continue;
        }
        let can_hold: Option<bool> = sqlx::query_scalar(
            "SELECT alliance_member_id IS NOT NULL OR phone_proven_at IS NOT NULL OR email_proven_at IS NOT NULL \
             FROM members WHERE id = $1",
        )
        .bind(to)
        .fetch_optional(&mut *conn)
        .await?;
        if can_hold == Some(false) {
            out.push(SkippedEffect {
                effect: i,
                code: UNPROVEN.into(),
                message: format!(
                    "member {to} has no proven phone number or e-mail, so no alliance identity: this issue of \
                     {currency} would be left out"
                ),
            });
        }
    }
    Ok(out)
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
    currencies: &HashMap<String, Currency>,
    member: &MemberInput,
    producer: &Producer<'_>,
    effects: &[Effect],
    now: DateTime<Utc>,
) -> Result<Vec<SkippedEffect>> {
    let shared = |c: &str| currencies.get(c).is_some_and(|c| c.shared);
    let mut skipped = Vec::new();
    for (i, effect) in effects.iter().enumerate() {
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
                skipped.push(SkippedEffect { effect: i, code: e.code().to_string(), message: e.to_string() });
            }
        }
    }
    Ok(skipped)
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
