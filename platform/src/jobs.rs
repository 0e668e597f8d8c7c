//! Background jobs over every tenant: the ledger's nightly pipeline (release → expire
//! → holds → reminders); and the sweep of old throttle counters. Each tenant's run holds a per-tenant advisory lock, so several
//! server instances never run the same tenant at once.

use chrono::{DateTime, Utc};

use crate::db::Db;
use crate::directory::{self, TenantStatus};
use crate::error::Result;
use crate::ledger::expiry::{self, JobReport};
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
        let key = i32::try_from(t.id % i64::from(i32::MAX)).unwrap_or(0);
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
            .bind(LOCK_NS_JOBS)
            .bind(key)
            .fetch_one(&mut *lock_conn)
            .await?;
        if !got {
            continue;
        }
        let r = match expiry::run_all(db, &t, now).await {
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
