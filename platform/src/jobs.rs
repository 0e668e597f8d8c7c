//! Background jobs over every tenant: the nightly pipeline (unpaid orders → release →
//! expire → holds → reminders: each layer's own job, run here in order); and the sweep
//! of old throttle counters. Each tenant's run holds a per-tenant advisory lock, so several
//! server instances never run the same tenant at once.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::db::Db;
use crate::directory::{self, Tenant, TenantStatus};
use crate::error::Result;
use crate::ledger::{expiry, holds, locks};
use crate::mall::{orders, stock};
use crate::rules::cache::RuleCache;
use crate::rules::pipeline;

/// Advisory lock namespace of job runs (second key: tenant id).
pub const LOCK_NS_JOBS: i32 = 0x504d_0003;

/// Runs the jobs of every active tenant (or the one named) at `now`. Tenants another
/// instance is working on are skipped.
pub async fn run(
    db: &Db,
    rules: &RuleCache,
    only: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<(String, Result<JobReport>)>> {
    let mut out = Vec::new();
    if only.is_none() {
        // Login and code-send counters whose window ended long ago.
        crate::auth::throttle::sweep(db.control(), crate::limits::THROTTLE_SWEEP_AFTER_SECS).await?;
    }
    for t in directory::list(db.control()).await? {
        if only.is_some_and(|s| s != t.slug) || t.status != TenantStatus::Active {
            continue;
        }
        let pool = db.cluster(&t.cluster)?;
        let mut lock_conn = pool.acquire().await?;
        let key = i32::try_from(t.id.get() % i64::from(i32::MAX)).unwrap_or(0);
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
            .bind(LOCK_NS_JOBS)
            .bind(key)
            .fetch_one(&mut *lock_conn)
            .await?;
        if !got {
            continue;
        }
        let r = match run_tenant(db, &t, now).await {
            // Released points and level changes run through the rules (e.g. referral
            // acceleration of a daily release).
            Ok(report) => pipeline::drain_outbox(db, rules, &t).await.map(|_| report),
            Err(e) => Err(e),
        };
        sqlx::query("SELECT pg_advisory_unlock($1, $2)").bind(LOCK_NS_JOBS).bind(key).execute(&mut *lock_conn).await?;
        out.push((t.slug.clone(), r));
    }
    Ok(out)
}

/// What one run did.
#[derive(Debug, Default, Clone, Serialize, utoipa::ToSchema)]
pub struct JobReport {
    pub timed_out_orders: u64,
    pub released_grants: u64,
    pub released_amount: i64,
    pub expired_accounts: u64,
    pub expired_amount: i64,
    pub expired_holds: u64,
    pub reminders: u64,
    /// The merchant's scheduled messages to members that were sent.
    pub broadcasts: u64,
    /// Stock reservations given back because their order never committed.
    pub stale_reservations: u64,
}

/// Runs every job of one tenant at `now`, in a fixed order: unpaid orders and stale
/// stock reservations (the mall's jobs) → release locked points → expire lots → expire
/// holds → reminders → the merchant's scheduled messages → fold the reports' rollups →
/// the analytics' upkeep.
pub async fn run_tenant(db: &Db, tenant: &Tenant, now: DateTime<Utc>) -> Result<JobReport> {
    // Unpaid orders first: they release their holds themselves.
    let mut report = JobReport {
        timed_out_orders: orders::timeout_due(db, tenant, now).await?,
        stale_reservations: stock::release_stale(db, tenant, now).await?,
        ..JobReport::default()
    };
    let (n, amount) = locks::release_due(db, tenant, now).await?;
    report.released_grants = n;
    report.released_amount = amount;
    let (n, amount) = expiry::expire_due(db, tenant, now).await?;
    report.expired_accounts = n;
    report.expired_amount = amount;
    report.expired_holds = holds::expire_due(db, tenant, now).await?;
    report.reminders = expiry::remind(db, tenant, now).await?;
    report.broadcasts = crate::broadcasts::send_due(db, tenant, now).await?;
    // The reports' rollups: fold the rows written since the last run.
    crate::reports::compact::tenant(db, tenant, now).await?;
    // The analytics' search terms and spending ages, folded; old browse records forgotten.
    crate::analytics::maintain(db, tenant, now).await?;
    Ok(report)
}

/// Runs the jobs of every tenant every `every`, for as long as the server runs.
pub async fn run_forever(db: Db, rules: RuleCache, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        match run(&db, &rules, None, Utc::now()).await {
            Ok(results) => {
                for (slug, r) in results {
                    if let Err(e) = r {
                        tracing::error!(tenant = %slug, error = %e, "ledger jobs failed");
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "ledger jobs could not run"),
        }
    }
}
