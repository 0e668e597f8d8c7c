//! The migration runner: control schema first, then every tenant schema.
//!
//! sqlx's own migrator takes one database-wide advisory lock, so tenants are migrated by
//! this runner instead: each tenant in one transaction, on its own connection, under an
//! advisory lock keyed by that tenant, several tenants at a time (bounded).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use migrations::Migration;
use sqlx::PgPool;

use crate::db::{Db, select_schema};
use crate::directory::{self, Tenant};
use crate::error::Result;
use crate::ids::AllianceId;
use crate::limits;
use crate::schema::apply_pending;

/// Advisory lock namespaces (the first key of the two-key form). The second key is the
/// tenant id, so locks of different tenants never collide.
pub const LOCK_NS_CONTROL_MIGRATE: i32 = 0x504d_0001;
pub const LOCK_NS_TENANT_MIGRATE: i32 = 0x504d_0002;

/// Migrates the control schema (creating it if needed). Returns migrations applied.
pub async fn migrate_control(pool: &PgPool) -> Result<usize> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1, 0)").bind(LOCK_NS_CONTROL_MIGRATE).execute(&mut *tx).await?;
    sqlx::raw_sql("CREATE SCHEMA IF NOT EXISTS control").execute(&mut *tx).await?;
    select_schema(&mut tx, "control").await?;
    let n = apply_pending(&mut tx, migrations::CONTROL).await?;
    tx.commit().await?;
    Ok(n)
}

/// Migrates one tenant schema in one transaction under the tenant's advisory lock.
pub async fn migrate_tenant(pool: &PgPool, control: &PgPool, tenant: &Tenant, list: &[Migration]) -> Result<usize> {
    let mut tx = pool.begin().await?;
    let tenant_key = i32::try_from(tenant.id.get() % i64::from(i32::MAX)).unwrap_or(0);
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(LOCK_NS_TENANT_MIGRATE)
        .bind(tenant_key)
        .execute(&mut *tx)
        .await?;
    select_schema(&mut tx, &tenant.schema_name).await?;
    let n = apply_pending(&mut tx, list).await?;
    tx.commit().await?;
    let version = list.last().map_or(0, |m| m.version);
    if n > 0 || tenant.schema_version != version {
        // The directory's copy of the version is informational (the schema's own
        // schema_migrations is the truth); it lives on the control cluster, which may
        // be another cluster than the tenant's, so it is written after the commit.
        sqlx::query("UPDATE control.tenants SET schema_version = $2, updated_at = now() WHERE id = $1")
            .bind(tenant.id)
            .bind(version)
            .execute(control)
            .await?;
    }
    Ok(n)
}

/// What `migrate` did.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub control_applied: usize,
    pub tenants_total: usize,
    pub tenants_changed: usize,
    pub tenants_unchanged: usize,
    pub migrations_applied: usize,
    pub failures: Vec<(String, String)>,
    pub elapsed: Duration,
}

/// Progress callback: (tenants done, tenants total).
pub type Progress = Arc<dyn Fn(usize, usize) + Send + Sync>;

/// Migrates the control schema, then every tenant, `concurrency` at a time.
/// A tenant that fails is reported and left at its previous version (its transaction
/// rolled back); the others go on.
pub async fn migrate_all(db: &Db, concurrency: usize, progress: Option<Progress>) -> Result<Summary> {
    let started = Instant::now();
    let concurrency = concurrency.clamp(1, limits::MIGRATE_CONCURRENCY_MAX);
    let mut summary = Summary { control_applied: migrate_control(db.control()).await?, ..Summary::default() };
    let tenants = directory::list(db.control()).await?;
    let in_alliances: Vec<(String, AllianceId)> =
        tenants.iter().filter_map(|t| Some((t.schema_name.clone(), t.alliance_id?))).collect();
    summary.tenants_total = tenants.len();
    let done = Arc::new(AtomicUsize::new(0));
    let total = tenants.len();
    let results: Vec<(String, Result<usize>)> = futures::stream::iter(tenants)
        .map(|t| {
            let done = done.clone();
            let progress = progress.clone();
            async move {
                let result = match db.cluster(&t.cluster) {
                    Ok(pool) => migrate_tenant(pool, db.control(), &t, migrations::TENANT).await,
                    Err(e) => Err(e),
                };
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if let Some(p) = &progress {
                    p(n, total);
                }
                (t.slug, result)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    for (slug, r) in results {
        match r {
            Ok(0) => summary.tenants_unchanged += 1,
            Ok(n) => {
                summary.tenants_changed += 1;
                summary.migrations_applied += n;
            }
            Err(e) => summary.failures.push((slug, e.to_string())),
        }
    }
    if let Err(e) = migrate_alliances(db.control(), &in_alliances).await {
        summary.failures.push(("alliances".into(), e.to_string()));
    }
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Creates or migrates every alliance schema and lists each alliance's currency in its
/// merchants' schemas (alliances are few; their merchants all live on the main cluster).
async fn migrate_alliances(control: &PgPool, members: &[(String, AllianceId)]) -> Result<()> {
    for a in directory::list_alliances(control).await? {
        let mut tx = control.begin().await?;
        crate::alliance::schema::ensure(&mut tx, &a).await?;
        for (schema, _) in members.iter().filter(|(_, id)| *id == a.id) {
            select_schema(&mut tx, schema).await?;
            crate::alliance::schema::join(&mut tx, &a).await?;
        }
        tx.commit().await?;
    }
    Ok(())
}
