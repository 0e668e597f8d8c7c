//! Runs the rules of a batch's events, in order, on the evaluation threads: each event is
//! counted, sees the member as left by the events before it, and gets a verdict — its
//! effects, a denial, or a failure (a rule broke, or an effect names an unknown currency
//! or spends more than the member has). Nothing is written here.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use scripting::{Effect, EventInput, MemberInput, Sandbox};

use super::admission::Admission;
use super::bounds;
use super::cache::RuleSet;
use super::context::Contexts;
use crate::directory::Tenant;
use crate::error::{Error, Result};
use crate::ledger::currencies::Currency;

/// What one rule returned for an event.
pub struct RuleRun {
    pub rule_id: i64,
    /// An alliance-wide rule (`LoadedRule::alliance`).
    pub alliance: bool,
    pub name: String,
    pub version: i32,
    pub params_version: i32,
    pub effects: Vec<Effect>,
    /// Effects left out when the event was written, and why (the event stands).
    pub skipped: Vec<SkippedEffect>,
}

/// An effect left out while the rest of its event was written: an award of the
/// alliance's shared points to a member who cannot hold them yet (`identifier_unproven`:
/// no proven phone or e-mail, so no alliance identity), or — for an alliance-wide rule —
/// one the mall's issuing budget does not cover (`budget_exhausted`).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SkippedEffect {
    /// The effect's position in the rule's effects (from 0).
    pub effect: usize,
    /// Why, as an error code.
    pub code: String,
    pub message: String,
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
    /// The mall's local day the event happened on.
    pub day: chrono::NaiveDate,
}

/// Evaluates `jobs` in order; returns the contexts as the batch leaves them.
///
/// The work runs in slices on the server's evaluation threads: each slice first gets a
/// permit of the tenant and a thread (`admission`, bounded waits answered 429/503), runs
/// events for about `bounds::EVAL_SLICE_MS` (at least one), and gives the thread back,
/// so a batch of slow rules cannot keep other tenants' events waiting for long. Each
/// rule's own deadline starts when it runs; the safety net below starts when the slice's
/// thread does, so waiting for a permit or a thread never counts as running time.
pub async fn evaluate(
    admission: &Admission,
    tenant: &Tenant,
    sandbox: Arc<Sandbox>,
    set: Arc<RuleSet>,
    mut ctx: Contexts,
    currencies: Arc<HashMap<String, Currency>>,
    jobs: Vec<Job>,
) -> Result<(Contexts, Vec<Evaluated>)> {
    let rules_per_event = jobs.iter().map(|j| set.for_event(&j.event.kind).count()).max().unwrap_or(0).max(1);
    let net = Duration::from_millis(
        bounds::EVAL_SLICE_MS.saturating_add(bounds::RULE_TIMEOUT_MS.saturating_mul(rules_per_event as u64)),
    );
    let slice = Duration::from_millis(bounds::EVAL_SLICE_MS);
    let jobs = Arc::new(jobs);
    let mut out: Vec<Evaluated> = Vec::with_capacity(jobs.len());
    while out.len() < jobs.len() {
        let permit = admission.evaluation(tenant).await?;
        // The slice adds to `out` in place (moved there and back: no copies of the verdicts).
        let (sandbox, set, currencies, jobs, from, mut done) =
            (sandbox.clone(), set.clone(), currencies.clone(), jobs.clone(), out.len(), std::mem::take(&mut out));
        let (started_tx, started_rx) = tokio::sync::oneshot::channel::<Instant>();
        let slice_done = admission.run(permit, move || {
            let began = Instant::now();
            let _ = started_tx.send(began);
            for job in &jobs[from..] {
                done.push(one(&sandbox, &set, &mut ctx, &currencies, job));
                if began.elapsed() >= slice {
                    break;
                }
            }
            (ctx, done)
        })?;
        // A permit holder finds a thread free, so the slice starts at once; the safety
        // net counts from then.
        let began = started_rx.await.map_err(|_| crashed())?;
        match tokio::time::timeout(net.saturating_sub(began.elapsed()), slice_done).await {
            Ok(Ok((back, done))) => {
                ctx = back;
                out = done;
            }
            Ok(Err(_)) => return Err(crashed()),
            // The sandbox stops every rule at its own deadline, so a slice running past the
            // net is one the machine did not give CPU to (an overloaded server, or a heavy
            // tenant's low-priority thread starved): nothing was written; retry later.
            Err(_) => {
                tracing::warn!(tenant = %tenant.slug, ?net, "a rule evaluation slice ran past its safety net");
                return Err(Error::Unavailable {
                    code: "server_busy",
                    message: "rule evaluation is running slowly on this server; retry shortly".into(),
                    retry_after_secs: bounds::BUSY_RETRY_AFTER_SECS,
                });
            }
        }
    }
    Ok((ctx, out))
}

fn crashed() -> Error {
    Error::Internal(anyhow::anyhow!("rule evaluation crashed"))
}

fn one(
    sandbox: &Sandbox,
    set: &RuleSet,
    ctx: &mut Contexts,
    currencies: &HashMap<String, Currency>,
    job: &Job,
) -> Evaluated {
    let kind = job.event.kind.as_str();
    ctx.count(job.member_id, kind, job.day, 1);
    let member = ctx.input(job.member_id, kind, job.day).unwrap_or_default();
    let mut runs = Vec::new();
    let mut failure = None;
    for rule in set.for_event(kind) {
        match sandbox.run_on(&rule.ast, &job.event, &member, &rule.params) {
            Ok(effects) => runs.push(RuleRun {
                rule_id: rule.id,
                alliance: rule.alliance,
                name: rule.name.clone(),
                version: rule.version,
                params_version: rule.params_version,
                effects,
                skipped: Vec::new(),
            }),
            Err(e) => {
                failure = Some(format!(
                    "rule {} ({:?}) v{} (parameters v{}): {} ({})",
                    rule.id, rule.name, rule.version, rule.params_version, e.message, e.kind
                ));
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
            ctx.count(job.member_id, kind, job.day, -1);
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
/// spent or more than the member has. Balances are the member's plus what the effects
/// before moved (kept as changes, so the member's balances are not copied).
fn check(runs: &[RuleRun], member: &MemberInput, currencies: &HashMap<String, Currency>) -> Result<(), String> {
    let mut moved: Vec<(&str, i64)> = Vec::new();
    for effect in runs.iter().flat_map(|r| &r.effects) {
        let currency = match effect {
            Effect::Award { currency, .. }
            | Effect::AwardReferrer { currency, .. }
            | Effect::Deduct { currency, .. }
            | Effect::Lock { currency, .. } => currency.as_str(),
            _ => continue,
        };
        let Some(c) = currencies.get(currency) else {
            return Err(format!("currency {currency:?}: no such currency in this mall"));
        };
        match effect {
            Effect::Award { amount, .. } => change(&mut moved, currency, *amount),
            Effect::Deduct { amount, .. } => {
                if !c.spendable {
                    return Err(format!("currency {currency:?} cannot be spent"));
                }
                if c.shared {
                    // Rules do not read shared balances: the alliance's ledger refuses
                    // an overdraft when the event is written (`insufficient_points`).
                    continue;
                }
                let earlier = moved.iter().find(|m| m.0 == currency).map_or(0, |m| m.1);
                let balance = member.balances.get(currency).copied().unwrap_or(0) + earlier;
                if balance < *amount {
                    return Err(format!("insufficient points: the balance is {balance}; {amount} needed"));
                }
                change(&mut moved, currency, -amount);
            }
            _ => {}
        }
    }
    Ok(())
}

fn change<'a>(moved: &mut Vec<(&'a str, i64)>, currency: &'a str, amount: i64) {
    match moved.iter_mut().find(|m| m.0 == currency) {
        Some(m) => m.1 += amount,
        None => moved.push((currency, amount)),
    }
}
