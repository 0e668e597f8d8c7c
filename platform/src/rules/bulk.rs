//! Applies a run of events whose effects are all simple — awards, awards to referrers,
//! counters, tags — in a few statements: every credit of the run in one ledger batch
//! (in event order, so each account's chain follows the events), then every counter and
//! every tag in one statement each. Other effects (deduct, lock, accelerate) go through
//! `apply::apply`, one event at a time.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use scripting::{Effect, MemberInput};
use sqlx::PgConnection;

use super::apply::{self, Producer};
use super::evaluate::RuleRun;
use crate::directory::Tenant;
use crate::error::{Error, Result};
use crate::ledger::Reason;
use crate::ledger::batch;
use crate::ledger::currencies::Currency;
use crate::ledger::post::{CreditItem, LotPart};

/// An event about to be applied.
pub struct Applying<'a> {
    pub key: &'a str,
    pub member: &'a MemberInput,
    pub runs: &'a [RuleRun],
}

/// Whether every effect of `runs` can go into a bulk run. Awards of the alliance's shared
/// currency are not: each is charged to the mall's issuing budget, which may refuse it,
/// so it runs alone in its event's savepoint.
pub fn is_simple(runs: &[RuleRun], currencies: &HashMap<String, Currency>) -> bool {
    let shared = |c: &str| currencies.get(c).is_some_and(|c| c.shared);
    runs.iter().flat_map(|r| &r.effects).all(|e| match e {
        Effect::Award { currency, .. } | Effect::AwardReferrer { currency, .. } => !shared(currency),
        Effect::SetCounter { .. } | Effect::Tag { .. } => true,
        _ => false,
    })
}

pub async fn apply_run(
    conn: &mut PgConnection,
    tenant: &Tenant,
    currencies: &HashMap<String, Currency>,
    events: &[Applying<'_>],
    now: DateTime<Utc>,
) -> Result<()> {
    let mut credits = Vec::new();
    // Last value wins, per (member, counter); tags are a set.
    let mut counters: HashMap<(i64, &str), i64> = HashMap::new();
    let mut tags: Vec<(i64, &str)> = Vec::new();
    for event in events {
        let member = event.member;
        for run in event.runs {
            let producer = Producer {
                rule_id: run.rule_id,
                alliance: run.alliance,
                version: run.version,
                params_version: run.params_version,
                event_key: event.key,
            };
            for effect in &run.effects {
                match effect {
                    Effect::Award { currency, amount, memo, expires_in_days } => {
                        let expires_at = apply::expiry(tenant, known(currencies, currency)?, *expires_in_days, now);
                        credits.push(CreditItem {
                            member_id: member.id,
                            currency: currency.clone(),
                            parts: vec![LotPart { amount: *amount, expires_at }],
                            source: apply::source(&producer, memo),
                        });
                    }
                    Effect::AwardReferrer { depth, currency, amount, memo } => {
                        if let Some(to) = apply::target(member, *depth) {
                            let expires_at = apply::expiry(tenant, known(currencies, currency)?, None, now);
                            credits.push(CreditItem {
                                member_id: to,
                                currency: currency.clone(),
                                parts: vec![LotPart { amount: *amount, expires_at }],
                                source: apply::source(&producer, memo),
                            });
                        }
                    }
                    Effect::SetCounter { name, value } => {
                        counters.insert((member.id, name), *value);
                    }
                    Effect::Tag { name } => tags.push((member.id, name)),
                    other => {
                        return Err(Error::Internal(anyhow::anyhow!("not a bulk effect: {other:?}")));
                    }
                }
            }
        }
    }
    batch::credit_many(conn, &credits, Reason::Earn, now).await?;
    set_counters(conn, counters).await?;
    add_tags(conn, tags).await
}

fn known<'c>(currencies: &'c HashMap<String, Currency>, code: &str) -> Result<&'c Currency> {
    currencies.get(code).ok_or_else(|| Error::invalid_field("currency", "no such currency in this mall"))
}

async fn set_counters(conn: &mut PgConnection, counters: HashMap<(i64, &str), i64>) -> Result<()> {
    if counters.is_empty() {
        return Ok(());
    }
    let mut rows: Vec<((i64, &str), i64)> = counters.into_iter().collect();
    rows.sort_unstable();
    let members: Vec<i64> = rows.iter().map(|r| r.0.0).collect();
    let names: Vec<&str> = rows.iter().map(|r| r.0.1).collect();
    let values: Vec<i64> = rows.iter().map(|r| r.1).collect();
    sqlx::query(
        "INSERT INTO member_counters (member_id, name, value) \
         SELECT m, n, v FROM unnest($1::bigint[], $2::text[], $3::bigint[]) AS t(m, n, v) \
         ON CONFLICT (member_id, name) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
    )
    .bind(&members)
    .bind(&names)
    .bind(&values)
    .execute(conn)
    .await?;
    Ok(())
}

async fn add_tags(conn: &mut PgConnection, mut tags: Vec<(i64, &str)>) -> Result<()> {
    if tags.is_empty() {
        return Ok(());
    }
    tags.sort_unstable();
    tags.dedup();
    let (members, names): (Vec<i64>, Vec<&str>) = tags.into_iter().unzip();
    sqlx::query(
        "INSERT INTO member_tags (member_id, tag) SELECT m, t FROM unnest($1::bigint[], $2::text[]) AS x(m, t) \
         ON CONFLICT DO NOTHING",
    )
    .bind(&members)
    .bind(&names)
    .execute(conn)
    .await?;
    Ok(())
}
