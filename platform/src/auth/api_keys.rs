//! Partner API keys (SPEC P1): `pmk_<prefix>_<secret>`. Shown once at creation; stored
//! as the public prefix plus SHA-256 of the secret; scoped; revocable at once.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use super::secrets;
use crate::audit::{self, Actor};
use crate::error::{Error, Result, Validator};
use crate::ids::TenantId;
use crate::limits;

/// What a key may do.
pub const SCOPES: &[&str] =
    &["members:read", "members:write", "points:read", "points:write", "events:write", "orders:read", "orders:write"];

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    pub name: String,
    /// Any of: members:read, members:write, points:read, points:write, events:write,
    /// orders:read, orders:write.
    #[schema(value_type = Vec<ApiKeyScope>, min_items = 1, max_items = 16)]
    pub scopes: Vec<String>,
}

/// A scope of a partner API key in the OpenAPI document: one of `SCOPES`.
pub struct ApiKeyScope;

impl utoipa::PartialSchema for ApiKeyScope {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new().schema_type(Type::String).enum_values(Some(SCOPES.iter().copied())).into()
    }
}
impl utoipa::ToSchema for ApiKeyScope {}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ApiKey {
    pub id: i64,
    pub prefix: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A key just created: the only time its full text is shown.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub key: ApiKey,
    /// The full key; store it now, it cannot be shown again.
    pub secret: String,
}

/// An authenticated partner.
#[derive(Debug, Clone)]
pub struct PartnerKey {
    pub key_id: i64,
    pub tenant_id: TenantId,
    pub scopes: Vec<String>,
}

impl PartnerKey {
    pub fn require(&self, scope: &str) -> Result<()> {
        if self.scopes.iter().any(|s| s == scope) {
            Ok(())
        } else {
            Err(Error::forbidden("scope_missing", format!("this API key lacks the {scope:?} scope")))
        }
    }
}

pub async fn create(pool: &PgPool, tenant_id: TenantId, new: &NewApiKey, actor: &Actor) -> Result<CreatedApiKey> {
    let mut v = Validator::new();
    v.check(!new.name.trim().is_empty() && new.name.chars().count() <= 100, "name", "1 to 100 characters");
    v.check(!new.scopes.is_empty() && new.scopes.len() <= limits::API_KEY_SCOPES_MAX, "scopes", "at least one scope");
    for s in &new.scopes {
        v.check(SCOPES.contains(&s.as_str()), "scopes", "unknown scope");
    }
    v.finish()?;
    let mut scopes = new.scopes.clone();
    scopes.sort();
    scopes.dedup();
    let prefix = secrets::random_hex(6);
    let secret = secrets::random_token(32);
    let full = format!("pmk_{prefix}_{secret}");
    let mut tx = pool.begin().await?;
    let key: ApiKey = sqlx::query_as(
        "INSERT INTO control.api_keys (tenant_id, prefix, secret_hash, name, scopes, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         RETURNING id, prefix, name, scopes, created_at, revoked_at, last_used_at",
    )
    .bind(tenant_id)
    .bind(&prefix)
    .bind(secrets::digest(&secret))
    .bind(new.name.trim())
    .bind(&scopes)
    .bind(actor.id)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| match &e {
        // The trigger of control migration 0004 counts under the tenant row's lock.
        sqlx::Error::Database(d) if d.constraint() == Some("api_keys_per_tenant_max") => Error::conflict(
            "too_many_api_keys",
            format!("at most {} live keys; revoke an unused key first", limits::API_KEYS_PER_TENANT_MAX),
        ),
        _ => Error::Database(e),
    })?;
    audit::record(
        &mut tx,
        actor,
        Some(tenant_id),
        "api_key.create",
        &prefix,
        serde_json::json!({"name": key.name, "scopes": key.scopes}),
    )
    .await?;
    tx.commit().await?;
    Ok(CreatedApiKey { key, secret: full })
}

pub async fn list(pool: &PgPool, tenant_id: TenantId) -> Result<Vec<ApiKey>> {
    Ok(sqlx::query_as(
        "SELECT id, prefix, name, scopes, created_at, revoked_at, last_used_at \
         FROM control.api_keys WHERE tenant_id = $1 ORDER BY id",
    )
    .bind(tenant_id)
    .fetch_all(pool)
    .await?)
}

pub async fn revoke(pool: &PgPool, tenant_id: TenantId, key_id: i64, actor: &Actor) -> Result<ApiKey> {
    let mut tx = pool.begin().await?;
    let key: ApiKey = sqlx::query_as(
        "UPDATE control.api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 AND tenant_id = $2 \
         RETURNING id, prefix, name, scopes, created_at, revoked_at, last_used_at",
    )
    .bind(key_id)
    .bind(tenant_id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| Error::not_found("api_key_not_found", "no such API key"))?;
    audit::record(&mut tx, actor, Some(tenant_id), "api_key.revoke", &key.prefix, serde_json::json!({})).await?;
    tx.commit().await?;
    Ok(key)
}

/// Checks a presented key for the addressed tenant. Keys are checked against the
/// database on every request, so a revocation takes effect at once.
pub async fn authenticate(pool: &PgPool, tenant_id: TenantId, presented: &str) -> Result<PartnerKey> {
    let invalid = || Error::unauthenticated("api_key_invalid", "the API key is unknown or revoked");
    let rest = presented.strip_prefix("pmk_").ok_or_else(invalid)?;
    let (prefix, secret) = rest.split_once('_').ok_or_else(invalid)?;
    if prefix.len() != 12 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid());
    }
    #[derive(sqlx::FromRow)]
    struct Stored {
        id: i64,
        tenant_id: TenantId,
        secret_hash: Vec<u8>,
        scopes: Vec<String>,
        revoked: bool,
    }
    let row: Option<Stored> = sqlx::query_as(
        "SELECT id, tenant_id, secret_hash, scopes, revoked_at IS NOT NULL AS revoked FROM control.api_keys WHERE prefix = $1",
    )
    .bind(prefix)
    .fetch_optional(pool)
    .await?;
    let Stored { id: key_id, tenant_id: key_tenant, secret_hash, scopes, revoked } = row.ok_or_else(invalid)?;
    if revoked || !secrets::digests_equal(&secret_hash, &secrets::digest(secret)) {
        return Err(invalid());
    }
    if key_tenant != tenant_id {
        return Err(Error::forbidden("wrong_tenant", "this API key belongs to another mall"));
    }
    // Coarse last-use stamp: at most one write a minute per key.
    sqlx::query(
        "UPDATE control.api_keys SET last_used_at = now() \
         WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
    )
    .bind(key_id)
    .execute(pool)
    .await?;
    Ok(PartnerKey { key_id, tenant_id, scopes })
}
