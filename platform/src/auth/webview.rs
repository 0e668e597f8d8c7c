//! The webview hand-off (M4): the merchant's app signs a short-lived HS256 token naming
//! its member (`external_id`) with the mall's webview secret; the mall signs that member
//! in without a second login. A token lives at most 5 minutes from its `iat`, may not be
//! issued in the future, and works once (its `jti` is recorded until it expires).

use serde::Deserialize;

use crate::audit::{self, Actor};
use crate::db::Db;
use crate::directory::Tenant;
use crate::error::{Error, Result};
use crate::provider_secrets::{self, WEBVIEW};
use crate::vault::Vault;

/// Longest lifetime (`exp - iat`) of a hand-off token.
pub const TOKEN_TTL_MAX_SECS: i64 = 300;

#[derive(Debug, Deserialize)]
struct Claims {
    external_id: String,
    jti: String,
    iat: i64,
    exp: i64,
}

fn invalid() -> Error {
    Error::unauthenticated("webview_token_invalid", "the hand-off token is invalid, expired or used")
}

/// Creates (or replaces) the mall's webview secret, audited; returns it (shown once).
pub async fn rotate_secret(db: &Db, vault: &Vault, tenant: &Tenant, actor: &Actor) -> Result<String> {
    let secret = crate::auth::secrets::random_hex(32);
    let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
    provider_secrets::store(&mut tx, vault, tenant.id, WEBVIEW, &secret).await?;
    audit::record(&mut tx, actor, Some(tenant.id), "webview_secret.rotate", "", serde_json::json!({})).await?;
    tx.commit().await?;
    Ok(secret)
}

/// Checks a hand-off token and uses it up; returns the member it names.
pub async fn sign_in(db: &Db, vault: &Vault, tenant: &Tenant, token: &str) -> Result<i64> {
    let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
    let secret = provider_secrets::load(&mut tx, vault, tenant.id, WEBVIEW).await?.ok_or_else(invalid)?;
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.set_audience(&["pointsmall:webview"]);
    v.set_required_spec_claims(&["exp", "aud"]);
    v.leeway = crate::limits::JWT_LEEWAY_SECS;
    let claims = jsonwebtoken::decode::<Claims>(token, &jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()), &v)
        .map_err(|_| invalid())?
        .claims;
    // A token dated a year ahead would otherwise stay usable for a year.
    let fresh = crate::auth::tokens::lifetime_within(claims.iat, claims.exp, TOKEN_TTL_MAX_SECS);
    if !fresh || claims.jti.is_empty() || claims.jti.len() > 100 {
        return Err(invalid());
    }
    let first_use = sqlx::query(
        "INSERT INTO webview_tokens (jti, expires_at) VALUES ($1, to_timestamp($2)) ON CONFLICT DO NOTHING",
    )
    .bind(&claims.jti)
    .bind(claims.exp as f64)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !first_use {
        return Err(invalid());
    }
    sqlx::query("DELETE FROM webview_tokens WHERE expires_at < now() - interval '1 hour'").execute(&mut *tx).await?;
    let member: Option<i64> = sqlx::query_scalar("SELECT id FROM members WHERE external_id = $1")
        .bind(&claims.external_id)
        .fetch_optional(&mut *tx)
        .await?;
    let member = member.ok_or_else(invalid)?;
    tx.commit().await?;
    Ok(member)
}
