//! Writes that move points take an `Idempotency-Key` header (SPEC §5, L8). The key is
//! claimed in the same transaction as the write (see `platform::idempotency`), so a
//! replay returns the first response and concurrent duplicates run once.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use platform::db::Db;
use platform::directory::Tenant;
use platform::{Error, idempotency};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::PgConnection;

use crate::error::ApiResult;

/// A request's idempotency identity.
pub struct Idem {
    scope: String,
    key: String,
    hash: Vec<u8>,
}

impl Idem {
    /// `credential` names who is writing ("partner:3", "member:9", "staff:2").
    pub fn new(
        headers: &HeaderMap,
        method: &str,
        path: &str,
        credential: &str,
        body: &serde_json::Value,
    ) -> Result<Self, Error> {
        let key = idempotency::check_key(headers.get("idempotency-key").and_then(|v| v.to_str().ok()))?;
        Ok(Self {
            scope: format!("{credential} {method} {path}"),
            key,
            hash: idempotency::request_hash(method, path, body),
        })
    }
}

/// Reads a typed body out of the JSON value the idempotency hash was taken of.
pub fn parse<T: DeserializeOwned>(body: serde_json::Value) -> Result<T, Error> {
    serde_json::from_value(body).map_err(|e| Error::Invalid {
        code: "validation_failed",
        message: e.to_string(),
        fields: vec![],
    })
}

/// Runs `work` in a tenant transaction guarded by the key; answers `status` with its
/// result, or replays the first answer.
pub async fn write<T, F>(db: &Db, tenant: &Tenant, idem: Idem, status: StatusCode, work: F) -> ApiResult<Response>
where
    T: Serialize,
    F: for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, platform::Result<T>>,
{
    let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
    if let Some(replay) = idempotency::begin(&mut tx, &idem.scope, &idem.key, &idem.hash).await? {
        tx.commit().await.map_err(Error::from)?;
        let status = StatusCode::from_u16(replay.status).unwrap_or(StatusCode::OK);
        let mut resp = (status, axum::Json(replay.body)).into_response();
        resp.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
        return Ok(resp);
    }
    let out = work(&mut tx).await?;
    let body = serde_json::to_value(&out).map_err(|e| Error::Internal(e.into()))?;
    idempotency::finish(&mut tx, &idem.scope, &idem.key, status.as_u16(), &body).await?;
    tx.commit().await.map_err(Error::from)?;
    Ok((status, axum::Json(body)).into_response())
}
