//! The tenant directory: which tenants exist, where their schema lives, whether they
//! are active. Reads go through a cache that change notifications evict (see `notify`).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use moka::future::Cache;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::error::{Error, Result};
use crate::ids::{AllianceId, TenantId};
use crate::limits;
use crate::settings::TenantSettings;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    Active,
    Suspended,
}

impl TenantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
        }
    }
    /// Fails closed: a status this code does not know is an error, never "active".
    fn parse(s: &str) -> Result<Self> {
        match s {
            "active" => Ok(Self::Active),
            "suspended" => Ok(Self::Suspended),
            other => Err(Error::Internal(anyhow::anyhow!("unknown tenant status {other:?}"))),
        }
    }
}

/// One row of the directory.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Tenant {
    pub id: TenantId,
    pub slug: String,
    pub name: String,
    /// Schema holding this merchant's data (`t_<id>`).
    pub schema_name: String,
    /// PostgreSQL cluster holding that schema.
    pub cluster: String,
    pub status: TenantStatus,
    pub alliance_id: Option<AllianceId>,
    pub schema_version: i64,
    pub created_at: DateTime<Utc>,
    /// The mall's settings (T6); refreshed with the directory entry.
    #[serde(skip)]
    pub settings: TenantSettings,
}

#[derive(sqlx::FromRow)]
struct TenantRow {
    id: TenantId,
    slug: String,
    name: String,
    schema_name: String,
    cluster: String,
    status: String,
    alliance_id: Option<AllianceId>,
    schema_version: i64,
    created_at: DateTime<Utc>,
    settings: serde_json::Value,
}

impl TryFrom<TenantRow> for Tenant {
    type Error = Error;
    fn try_from(r: TenantRow) -> Result<Self> {
        Ok(Self {
            id: r.id,
            slug: r.slug,
            name: r.name,
            schema_name: r.schema_name,
            cluster: r.cluster,
            status: TenantStatus::parse(&r.status)?,
            alliance_id: r.alliance_id,
            schema_version: r.schema_version,
            created_at: r.created_at,
            settings: TenantSettings::from_stored(r.settings)?,
        })
    }
}

/// Looks a tenant up by slug, bypassing the cache.
pub async fn find_by_slug(pool: &PgPool, slug: &str) -> Result<Option<Tenant>> {
    find(pool, Some(slug), None).await
}

/// Looks a tenant up by id, bypassing the cache.
pub async fn find_by_id(pool: &PgPool, id: TenantId) -> Result<Option<Tenant>> {
    find(pool, None, Some(id)).await
}

async fn find(pool: &PgPool, slug: Option<&str>, id: Option<TenantId>) -> Result<Option<Tenant>> {
    let row: Option<TenantRow> = sqlx::query_as(
        "SELECT id, slug, name, schema_name, cluster, status, alliance_id, schema_version, created_at, settings \
         FROM control.tenants WHERE slug = $1 OR id = $2",
    )
    .bind(slug)
    .bind(id)
    .fetch_optional(pool)
    .await?;
    row.map(Tenant::try_from).transpose()
}

/// Every tenant, in id order.
pub async fn list(pool: &PgPool) -> Result<Vec<Tenant>> {
    let rows: Vec<TenantRow> = sqlx::query_as(
        "SELECT id, slug, name, schema_name, cluster, status, alliance_id, schema_version, created_at, settings \
         FROM control.tenants ORDER BY id",
    )
    .fetch_all(pool)
    .await?;
    // One unreadable row must not stop the jobs or migrations of every other tenant: it
    // is logged and left out (fail closed: nothing runs for it).
    let mut tenants = Vec::with_capacity(rows.len());
    for row in rows {
        let slug = row.slug.clone();
        match Tenant::try_from(row) {
            Ok(t) => tenants.push(t),
            Err(e) => tracing::error!(tenant = %slug, error = %e, "a directory row does not read; left out"),
        }
    }
    Ok(tenants)
}

/// Cached directory reads, keyed by slug.
#[derive(Clone)]
pub struct Directory {
    pool: PgPool,
    cache: Cache<String, Arc<Tenant>>,
}

impl Directory {
    pub fn new(pool: PgPool) -> Self {
        let cache = Cache::builder()
            .max_capacity(limits::DIRECTORY_CACHE_ENTRIES)
            .time_to_live(Duration::from_secs(limits::DIRECTORY_CACHE_TTL_SECS))
            .build();
        Self { pool, cache }
    }

    /// The tenant addressed by `slug`, or 404 `tenant_not_found`.
    pub async fn resolve(&self, slug: &str) -> Result<Arc<Tenant>> {
        if !slug_is_valid(slug) {
            return Err(tenant_not_found());
        }
        let pool = self.pool.clone();
        let key = slug.to_string();
        let found = self
            .cache
            .try_get_with(key.clone(), async move {
                match find_by_slug(&pool, &key).await {
                    Ok(Some(t)) => Ok(Arc::new(t)),
                    Ok(None) => Err(None),
                    Err(e) => Err(Some(e.to_string())),
                }
            })
            .await;
        match found {
            Ok(t) => Ok(t),
            Err(e) => match e.as_ref() {
                None => Err(tenant_not_found()),
                Some(msg) => Err(Error::Internal(anyhow::anyhow!("directory read failed: {msg}"))),
            },
        }
    }

    /// The tenant addressed by `slug`, refusing a suspended one.
    pub async fn resolve_active(&self, slug: &str) -> Result<Arc<Tenant>> {
        let t = self.resolve(slug).await?;
        if t.status == TenantStatus::Suspended {
            return Err(Error::forbidden(
                "tenant_suspended",
                format!(
                    "the mall {:?} is suspended; its data is kept, but it accepts no requests until resumed",
                    t.slug
                ),
            ));
        }
        Ok(t)
    }

    pub async fn evict(&self, slug: &str) {
        self.cache.invalidate(slug).await;
    }

    pub fn evict_all(&self) {
        self.cache.invalidate_all();
    }

    pub fn cached_entries(&self) -> u64 {
        self.cache.entry_count()
    }
}

fn tenant_not_found() -> Error {
    Error::not_found("tenant_not_found", "no such mall")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_status_fails_closed() {
        assert_eq!(TenantStatus::parse("active").unwrap(), TenantStatus::Active);
        assert_eq!(TenantStatus::parse("suspended").unwrap(), TenantStatus::Suspended);
        assert!(TenantStatus::parse("archived").is_err(), "never read as active");
    }
}

/// Slugs address tenants and alliances in URLs: lowercase letters, digits and dashes,
/// starting with a letter, 2 to 40 characters.
pub fn slug_is_valid(slug: &str) -> bool {
    crate::ident::is_lowercase_ident(slug, SLUG_LENGTHS, b'-')
}

const SLUG_LENGTHS: std::ops::RangeInclusive<usize> = 2..=40;

/// A slug in the OpenAPI document (`slug_is_valid`).
pub struct Slug;

impl utoipa::PartialSchema for Slug {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::ident::schema(SLUG_LENGTHS, b'-', "2 to 40 characters: a-z, 0-9 and -, starting with a letter")
    }
}
impl utoipa::ToSchema for Slug {}

/// One alliance of merchants (SPEC A1).
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Alliance {
    pub id: AllianceId,
    pub slug: String,
    pub name: String,
    pub cluster: String,
    pub schema_name: String,
    /// The shared currency (SPEC A1): its code in every merchant of the alliance, and its name.
    pub currency_code: String,
    pub currency_name: String,
}

pub(crate) const ALLIANCE_COLUMNS: &str = "id, slug, name, cluster, schema_name, currency_code, currency_name";

pub async fn list_alliances(pool: &PgPool) -> Result<Vec<Alliance>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {ALLIANCE_COLUMNS} FROM control.alliances ORDER BY id")))
        .fetch_all(pool)
        .await?)
}

pub async fn find_alliance(pool: &PgPool, slug: &str) -> Result<Alliance> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {ALLIANCE_COLUMNS} FROM control.alliances WHERE slug = $1")))
        .bind(slug)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| Error::not_found("alliance_not_found", "no such alliance"))
}
