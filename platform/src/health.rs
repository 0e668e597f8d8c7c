//! The operator's health view (issue 14): every configured PostgreSQL cluster (reachable,
//! round trip, server version, tenants on it) and every tenant schema's migration
//! version read from the schema's own `schema_migrations` (the truth; the directory's
//! copy is informational), against the latest this binary carries, with what is
//! pending. Read-only.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use chrono::{DateTime, Utc};
use migrations::Migration;
use serde::Serialize;

use crate::db::Db;
use crate::directory::{self, TenantStatus};
use crate::error::Result;

/// Tenants listed at most (those behind first); the counts always cover every tenant.
pub const TENANTS_LISTED_MAX: usize = 1000;

/// A migration by version and name.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MigrationName {
    pub version: i64,
    pub name: String,
}

/// The control schema's migrations.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ControlSchema {
    /// Highest version applied.
    pub version: i64,
    /// Highest version this server carries.
    pub latest: i64,
    pub pending: Vec<MigrationName>,
}

/// One configured cluster.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ClusterHealth {
    pub name: String,
    pub reachable: bool,
    /// Round trip of one query, in milliseconds.
    pub latency_ms: Option<f64>,
    /// PostgreSQL's `server_version`.
    pub server_version: Option<String>,
    /// Tenants whose schema the directory places on this cluster.
    pub tenants: i64,
    /// Of those, tenants with migrations pending or whose schema could not be read.
    pub tenants_behind: i64,
    /// Why it is not reachable.
    pub error: Option<String>,
}

/// One tenant schema against the latest migration.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TenantSchema {
    pub slug: String,
    pub name: String,
    pub cluster: String,
    pub status: TenantStatus,
    /// Highest migration applied in the schema (None: the schema could not be read).
    pub version: Option<i64>,
    /// The directory's copy of the version (written after each migration).
    pub directory_version: i64,
    /// Migrations of this server not applied in the schema, in order.
    pub pending: Vec<MigrationName>,
}

/// The whole view.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FleetHealth {
    pub checked_at: DateTime<Utc>,
    pub control: ControlSchema,
    /// The latest tenant migration this server carries.
    pub tenant_latest: MigrationName,
    pub clusters: Vec<ClusterHealth>,
    pub tenants_total: i64,
    /// Tenants with migrations pending or whose schema could not be read.
    pub tenants_behind: i64,
    /// Tenants behind first, then by slug; at most 1000.
    pub tenants: Vec<TenantSchema>,
    /// More tenants exist than are listed.
    pub tenants_truncated: bool,
}

fn pending(list: &[Migration], applied: &BTreeSet<i64>) -> Vec<MigrationName> {
    list.iter()
        .filter(|m| !applied.contains(&m.version))
        .map(|m| MigrationName { version: m.version, name: m.name.to_string() })
        .collect()
}

/// Reads the clusters, the control schema and every tenant schema's versions against
/// this server's migrations.
pub async fn check(db: &Db) -> Result<FleetHealth> {
    check_against(db, migrations::CONTROL, migrations::TENANT).await
}

/// `check` against given lists of migrations (a test names one this binary lacks).
pub async fn check_against(db: &Db, control_list: &[Migration], tenant_list: &[Migration]) -> Result<FleetHealth> {
    let control = control_schema(db, control_list).await?;
    let tenants = directory::list(db.control()).await?;
    let mut by_cluster: BTreeMap<String, Vec<&directory::Tenant>> = BTreeMap::new();
    for name in db.cluster_names() {
        by_cluster.entry(name).or_default();
    }
    for t in &tenants {
        by_cluster.entry(t.cluster.clone()).or_default().push(t);
    }
    let mut clusters = Vec::with_capacity(by_cluster.len());
    let mut schemas = Vec::with_capacity(tenants.len());
    for (name, on) in by_cluster {
        let (mut health, versions) = probe_cluster(db, &name, &on).await;
        for t in on {
            let state = tenant_schema(t, versions.get(&t.schema_name).cloned().flatten(), tenant_list);
            if state.version.is_none() || !state.pending.is_empty() {
                health.tenants_behind += 1;
            }
            schemas.push(state);
        }
        clusters.push(health);
    }
    let behind = |s: &TenantSchema| s.version.is_none() || !s.pending.is_empty();
    schemas.sort_by(|a, b| behind(b).cmp(&behind(a)).then_with(|| a.slug.cmp(&b.slug)));
    let tenants_behind = schemas.iter().filter(|s| behind(s)).count() as i64;
    let tenants_total = schemas.len() as i64;
    let tenants_truncated = schemas.len() > TENANTS_LISTED_MAX;
    schemas.truncate(TENANTS_LISTED_MAX);
    let last = tenant_list.last();
    Ok(FleetHealth {
        checked_at: Utc::now(),
        control,
        tenant_latest: MigrationName {
            version: last.map_or(0, |m| m.version),
            name: last.map_or_else(String::new, |m| m.name.to_string()),
        },
        clusters,
        tenants_total,
        tenants_behind,
        tenants: schemas,
        tenants_truncated,
    })
}

/// The control schema's applied migrations against `list`.
async fn control_schema(db: &Db, list: &[Migration]) -> Result<ControlSchema> {
    let applied: BTreeSet<i64> =
        sqlx::query_scalar::<_, i64>("SELECT version FROM control.schema_migrations ORDER BY version")
            .fetch_all(db.control())
            .await?
            .into_iter()
            .collect();
    Ok(ControlSchema {
        version: applied.last().copied().unwrap_or(0),
        latest: list.last().map_or(0, |m| m.version),
        pending: pending(list, &applied),
    })
}

/// Each schema's applied versions (None where the schema or its history is missing).
type Versions = BTreeMap<String, Option<BTreeSet<i64>>>;

/// One cluster: reachable, its latency and server version, and the applied versions of
/// the schemas of `on`. A failure is written into the health, never returned.
async fn probe_cluster(db: &Db, name: &str, on: &[&directory::Tenant]) -> (ClusterHealth, Versions) {
    let mut health = ClusterHealth {
        name: name.to_string(),
        reachable: false,
        latency_ms: None,
        server_version: None,
        tenants: on.len() as i64,
        tenants_behind: 0,
        error: None,
    };
    let pool = match db.cluster(name) {
        Ok(pool) => pool,
        Err(e) => {
            health.error = Some(e.to_string());
            return (health, Versions::new());
        }
    };
    let started = Instant::now();
    match sqlx::query_scalar::<_, String>("SELECT current_setting('server_version')").fetch_one(pool).await {
        Err(e) => {
            health.error = Some(e.to_string());
            return (health, Versions::new());
        }
        Ok(v) => {
            health.latency_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
            health.server_version = Some(v);
            health.reachable = true;
        }
    }
    let names: Vec<&str> = on.iter().map(|t| t.schema_name.as_str()).collect();
    // One statement per cluster: each schema's applied versions as "1,2,3" (NULL where
    // the schema or its history is missing).
    let rows: sqlx::Result<Vec<(String, Option<String>)>> = sqlx::query_as(
        "SELECT s.name, CASE WHEN to_regclass(format('%I.schema_migrations', s.name)) IS NOT NULL THEN \
           coalesce((xpath('/row/v/text()', query_to_xml(format( \
             'SELECT string_agg(version::text, '','' ORDER BY version) AS v FROM %I.schema_migrations', \
             s.name), false, true, '')))[1]::text, '') END \
         FROM unnest($1::text[]) AS s(name)",
    )
    .bind(&names)
    .fetch_all(pool)
    .await;
    let rows = rows.unwrap_or_else(|e| {
        health.error = Some(format!("schema versions not read: {e}"));
        Vec::new()
    });
    let versions = rows
        .into_iter()
        .map(|(schema, list)| (schema, list.map(|l| l.split(',').filter_map(|v| v.trim().parse().ok()).collect())))
        .collect();
    (health, versions)
}

/// One tenant's schema against the server's tenant migrations.
fn tenant_schema(t: &directory::Tenant, applied: Option<BTreeSet<i64>>, list: &[Migration]) -> TenantSchema {
    TenantSchema {
        slug: t.slug.clone(),
        name: t.name.clone(),
        cluster: t.cluster.clone(),
        status: t.status,
        version: applied.as_ref().map(|a| a.last().copied().unwrap_or(0)),
        directory_version: t.schema_version,
        pending: applied.as_ref().map_or_else(Vec::new, |a| pending(list, a)),
    }
}
