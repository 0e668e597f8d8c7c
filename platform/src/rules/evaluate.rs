//! Runs the rules of a batch's events, in order, on one blocking thread: each event is
//! counted, sees the member as left by the events before it, and gets a verdict — its
//! effects, a denial, or a failure (a rule broke, or an effect names an unknown currency
//! or spends more than the member has). Nothing is written here.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use scripting::{Effect, EventInput, Input, MemberInput, Sandbox};

use super::bounds;
use super::cache::RuleSet;
use super::context::Contexts;
use crate::error::{Error, Result};
use crate::ledger::currencies::Currency;

/// What one rule returned for an event.
pub struct RuleRun {
    pub rule_id: i64,
    pub name: String,
    pub version: i32,
    pub effects: Vec<Effect>,
}

pub enum Verdict {
    Apply(Vec<RuleRun>),
    Deny(String, Vec<RuleRun>),
    Fail(String),
}

/// An event with its verdict and the member as its rules saw them.
pub struct Evaluated {
    pub member: MemberInput,
    pub verdict: Verdict,
}

/// One event to evaluate: its member and what scripts see of it.
pub struct Job {
    pub member_id: i64,
    pub event: EventInput,
}

/// Evaluates `jobs` in order; returns the contexts as the batch leaves them.
pub async fn evaluate(
    sandbox: Arc<Sandbox>,
    set: Arc<RuleSet>,
    mut ctx: Contexts,
    currencies: Arc<HashMap<String, Currency>>,
    jobs: Vec<Job>,
) -> Result<(Contexts, Vec<Evaluated>)> {
    // Each run is bounded by the sandbox's own deadline; this only guards the thread.
    let budget = Duration::from_millis(bounds::RULE_TIMEOUT_MS.saturating_mul(jobs.len().max(1) as u64));
    let work = tokio::task::spawn_blocking(move || {
        let out: Vec<Evaluated> = jobs.iter().map(|job| one(&sandbox, &set, &mut ctx, &currencies, job)).collect();
        (ctx, out)
    });
    match tokio::time::timeout(budget, work).await {
        Ok(Ok(done)) => Ok(done),
        Ok(Err(join)) => Err(Error::Internal(anyhow::anyhow!("rule evaluation crashed: {join}"))),
        Err(_) => Err(Error::Internal(anyhow::anyhow!("rule evaluation did not finish within {budget:?}"))),
    }
}

fn one(
    sandbox: &Sandbox,
    set: &RuleSet,
    ctx: &mut Contexts,
    currencies: &HashMap<String, Currency>,
    job: &Job,
) -> Evaluated {
    let kind = job.event.kind.as_str();
    ctx.count(job.member_id, kind, 1);
    let member = ctx.input(job.member_id, kind).unwrap_or_default();
    let mut runs = Vec::new();
    let mut failure = None;
    for rule in set.for_event(kind) {
        let input = Input { event: job.event.clone(), member: member.clone(), params: rule.params.clone() };
        match sandbox.run(&rule.ast, &input) {
            Ok(effects) => {
                runs.push(RuleRun { rule_id: rule.id, name: rule.name.clone(), version: rule.version, effects })
            }
            Err(e) => {
                failure =
                    Some(format!("rule {} ({:?}) v{}: {} ({})", rule.id, rule.name, rule.version, e.message, e.kind));
                break;
            }
        }
    }
    let denial = runs.iter().flat_map(|r| &r.effects).find_map(|e| match e {
        Effect::Deny { reason } => Some(reason.clone()),
        _ => None,
    });
    let failure = failure.or_else(|| if denial.is_some() { None } else { check(&runs, &member, currencies).err() });
    let verdict = match (failure, denial) {
        (Some(message), _) => {
            ctx.count(job.member_id, kind, -1);
            Verdict::Fail(message)
        }
        (None, Some(reason)) => Verdict::Deny(reason, runs),
        (None, None) => {
            for run in &runs {
                ctx.absorb(job.member_id, &run.effects);
            }
            Verdict::Apply(runs)
        }
    };
    Evaluated { member, verdict }
}

/// Refuses effects that cannot be applied: unknown currencies, spending what cannot be
/// spent or more than the member has.
fn check(runs: &[RuleRun], member: &MemberInput, currencies: &HashMap<String, Currency>) -> Result<(), String> {
    let mut balances = member.balances.clone();
    for effect in runs.iter().flat_map(|r| &r.effects) {
        let currency = match effect {
            Effect::Award { currency, .. }
            | Effect::AwardReferrer { currency, .. }
            | Effect::Deduct { currency, .. }
            | Effect::Lock { currency, .. } => currency,
            _ => continue,
        };
        let Some(c) = currencies.get(currency) else {
            return Err(format!("currency {currency:?}: no such currency in this mall"));
        };
        if c.shared {
            return Err(format!(
                "currency {currency:?} is shared by the alliance: a merchant's rule cannot move it \
                 (credit it through the partner points API)"
            ));
        }
        match effect {
            Effect::Award { amount, .. } => *balances.entry(currency.clone()).or_default() += amount,
            Effect::Deduct { amount, .. } => {
                if !c.spendable {
                    return Err(format!("currency {currency:?} cannot be spent"));
                }
                let balance = balances.entry(currency.clone()).or_default();
                if *balance < *amount {
                    return Err(format!("insufficient points: the balance is {balance}; {amount} needed"));
                }
                *balance -= amount;
            }
            _ => {}
        }
    }
    Ok(())
}
