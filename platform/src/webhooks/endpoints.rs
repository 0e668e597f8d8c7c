//! The mall's webhook endpoints: create (the secret shown once), list, read, change,
//! delete, rotate the secret. The secret is stored sealed (`vault`), bound to the tenant
//! and the endpoint's id. Every change is audited in its transaction.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgConnection;

use super::address::{self, AddressPolicy};
use super::owner::{self, Owner, OwnerTx};
use super::{EVENT_TYPES, WebhookEventType, bounds, sign};
use crate::error::{Error, Result, Validator};
use crate::vault::Vault;

/// An endpoint as staff see it (never its secret).
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Endpoint {
    pub id: i64,
    pub url: String,
    pub description: String,
    #[schema(value_type = Vec<WebhookEventType>)]
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// Why the platform turned the endpoint off (after a run of failed attempts).
    pub disabled_reason: Option<String>,
    /// Failed attempts in a row.
    pub failure_run: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub(crate) const COLUMNS: &str =
    "id, url, description, event_types, enabled, disabled_reason, failure_run, created_at, updated_at";

/// A new endpoint.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    /// http or https; a private, loopback or link-local address is refused (422) unless
    /// the operator allows them.
    #[schema(
        min_length = 1,
        max_length = 2048,
        pattern = "^[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?){0,2}(?::[0-9]{1,5})?(?:[/?#][!-\\[\\]-~]*)?$"
    )]
    pub url: String,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub description: String,
    #[schema(value_type = Vec<WebhookEventType>, min_items = 1, max_items = 16)]
    pub event_types: Vec<String>,
}

/// A change of an endpoint; fields left out stay as they are. Turning an endpoint on
/// again resets its failure run.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointPatch {
    #[schema(
        min_length = 1,
        max_length = 2048,
        pattern = "^[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?){0,2}(?::[0-9]{1,5})?(?:[/?#][!-\\[\\]-~]*)?$"
    )]
    pub url: Option<String>,
    #[schema(max_length = 200)]
    pub description: Option<String>,
    #[schema(value_type = Option<Vec<WebhookEventType>>, min_items = 1, max_items = 16)]
    pub event_types: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

/// An endpoint with its secret: the answer of a create, the only time it is shown.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CreatedEndpoint {
    #[serde(flatten)]
    pub endpoint: Endpoint,
    /// `whsec_<base64>`: the HMAC key of the signatures is the base64 part.
    pub secret: String,
}

/// A rotated secret, shown once.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RotatedSecret {
    pub id: i64,
    pub secret: String,
}

fn check_types(v: &mut Validator, owner: &Owner, types: &[String]) {
    v.check(!types.is_empty() && types.len() <= bounds::EVENT_TYPES_MAX, "event_types", "1 to 16 event types");
    for t in types {
        v.check(EVENT_TYPES.contains(&t.as_str()), "event_types", "unknown event type");
        v.check(
            !EVENT_TYPES.contains(&t.as_str()) || owner.event_types().contains(&t.as_str()),
            "event_types",
            "an alliance's endpoint takes points.changed, budget.low and settlement.closed only",
        );
    }
}

fn normalized(types: &[String]) -> Vec<String> {
    let mut t = types.to_vec();
    t.sort();
    t.dedup();
    t
}

fn check_description(v: &mut Validator, d: &str) {
    v.check(d.chars().count() <= bounds::DESCRIPTION_MAX_CHARS, "description", "at most 200 characters");
}

/// Creates an endpoint; the answer carries its secret, once.
pub async fn create(
    tx: &mut impl OwnerTx,
    vault: &Vault,
    policy: AddressPolicy,
    new: &NewEndpoint,
) -> Result<CreatedEndpoint> {
    let mut v = Validator::new();
    check_types(&mut v, &tx.owner(), &new.event_types);
    check_description(&mut v, &new.description);
    v.finish()?;
    let url = address::check_url(&new.url, policy)?;
    // Endpoints are few and created rarely: one writer at a time keeps the count exact.
    sqlx::query("LOCK TABLE webhook_endpoints IN SHARE ROW EXCLUSIVE MODE").execute(&mut **tx).await?;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_endpoints").fetch_one(&mut **tx).await?;
    if count >= bounds::ENDPOINTS_PER_TENANT_MAX {
        return Err(Error::conflict(
            "too_many_webhooks",
            format!("at most {} webhook endpoints; delete an unused one first", bounds::ENDPOINTS_PER_TENANT_MAX),
        ));
    }
    let id: i64 = sqlx::query_scalar("SELECT nextval(pg_get_serial_sequence('webhook_endpoints', 'id'))")
        .fetch_one(&mut **tx)
        .await?;
    let secret = sign::new_secret();
    let sealed = vault.seal(&secret, &tx.owner().context(id))?;
    let endpoint: Endpoint = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO webhook_endpoints (id, url, description, event_types, secret_sealed, owner_kind) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(url.as_str())
    .bind(new.description.trim())
    .bind(normalized(&new.event_types))
    .bind(sealed)
    .bind(if matches!(tx.owner(), Owner::Alliance(_)) { "alliance" } else { "mall" })
    .fetch_one(&mut **tx)
    .await?;
    let details = json!({"url": endpoint.url, "event_types": endpoint.event_types});
    owner::audit(tx, "webhook.create", &format!("webhook:{id}"), details).await?;
    Ok(CreatedEndpoint { endpoint, secret })
}

pub async fn list(conn: &mut PgConnection) -> Result<Vec<Endpoint>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM webhook_endpoints ORDER BY id")))
        .fetch_all(conn)
        .await?)
}

fn not_found() -> Error {
    Error::not_found("webhook_not_found", "no such webhook endpoint")
}

pub async fn get(conn: &mut PgConnection, id: i64) -> Result<Endpoint> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM webhook_endpoints WHERE id = $1")))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(not_found)
}

/// Changes an endpoint. Turning it on resets its failure run and reason.
pub async fn update(tx: &mut impl OwnerTx, policy: AddressPolicy, id: i64, p: &EndpointPatch) -> Result<Endpoint> {
    let mut v = Validator::new();
    if let Some(t) = &p.event_types {
        check_types(&mut v, &tx.owner(), t);
    }
    if let Some(d) = &p.description {
        check_description(&mut v, d);
    }
    v.finish()?;
    let url = p.url.as_deref().map(|u| address::check_url(u, policy)).transpose()?;
    let endpoint: Endpoint = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE webhook_endpoints SET url = coalesce($2, url), description = coalesce($3, description), \
             event_types = coalesce($4, event_types), enabled = coalesce($5, enabled), \
             failure_run = CASE WHEN $5 THEN 0 ELSE failure_run END, \
             disabled_reason = CASE WHEN $5 IS NOT NULL THEN NULL ELSE disabled_reason END, updated_at = now() \
         WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(url.as_ref().map(url::Url::as_str))
    .bind(p.description.as_deref().map(str::trim))
    .bind(p.event_types.as_deref().map(normalized))
    .bind(p.enabled)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(not_found)?;
    if p.enabled == Some(false) {
        super::deliveries::fail_pending(tx, id, "the endpoint was turned off").await?;
    }
    let details =
        json!({"url": p.url, "description": p.description, "event_types": p.event_types, "enabled": p.enabled});
    owner::audit(tx, "webhook.update", &format!("webhook:{id}"), details).await?;
    Ok(endpoint)
}

/// Deletes an endpoint and its delivery log.
pub async fn delete(tx: &mut impl OwnerTx, id: i64) -> Result<Endpoint> {
    let endpoint: Endpoint =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("DELETE FROM webhook_endpoints WHERE id = $1 RETURNING {COLUMNS}")))
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?
            .ok_or_else(not_found)?;
    owner::audit(tx, "webhook.delete", &format!("webhook:{id}"), json!({"url": endpoint.url})).await?;
    Ok(endpoint)
}

/// Replaces an endpoint's secret; the answer shows the new one, once. Deliveries sent
/// from now on are signed with it.
pub async fn rotate(tx: &mut impl OwnerTx, vault: &Vault, id: i64) -> Result<RotatedSecret> {
    let secret = sign::new_secret();
    let sealed = vault.seal(&secret, &tx.owner().context(id))?;
    let n = sqlx::query("UPDATE webhook_endpoints SET secret_sealed = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(sealed)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(not_found());
    }
    owner::audit(tx, "webhook.rotate_secret", &format!("webhook:{id}"), json!({})).await?;
    Ok(RotatedSecret { id, secret })
}

/// What the worker needs of an endpoint to send: its URL and its HMAC key.
pub struct Target {
    pub url: String,
    pub key: Vec<u8>,
}

/// The URL and key of an enabled endpoint (None when it is gone or off).
pub async fn target(conn: &mut PgConnection, vault: &Vault, owner: &Owner, id: i64) -> Result<Option<Target>> {
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT url, secret_sealed FROM webhook_endpoints WHERE id = $1 AND enabled")
            .bind(id)
            .fetch_optional(conn)
            .await?;
    let Some((url, sealed)) = row else { return Ok(None) };
    let secret = vault.open(&sealed, &owner.context(id))?;
    let key = sign::key_of(&secret)
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("webhook endpoint {id} has a malformed secret")))?;
    Ok(Some(Target { url, key }))
}

/// Seals again, under the vault's current key, every endpoint secret of the selected
/// schema that is not sealed under it (`pointsmall secrets reseal`). Returns how many.
pub async fn reseal(conn: &mut PgConnection, vault: &Vault, owner: &Owner) -> Result<u64> {
    let rows: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, secret_sealed FROM webhook_endpoints ORDER BY id FOR UPDATE")
            .fetch_all(&mut *conn)
            .await?;
    let mut done = 0;
    for (id, stored) in rows.into_iter().filter(|(_, s)| !vault.is_current(s)) {
        let plain = vault.open(&stored, &owner.context(id))?;
        sqlx::query("UPDATE webhook_endpoints SET secret_sealed = $2 WHERE id = $1")
            .bind(id)
            .bind(vault.seal(&plain, &owner.context(id))?)
            .execute(&mut *conn)
            .await?;
        done += 1;
    }
    Ok(done)
}
