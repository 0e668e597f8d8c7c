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
/// The value was checked by the `Json` extractor; this reads it strictly (`input`).
pub fn parse<T: DeserializeOwned>(body: serde_json::Value) -> Result<T, Error> {
    crate::input::from_value(body)
}

/// Runs `work` in a tenant transaction guarded by the key; answers `status` with its
/// result, or replays the first answer.
pub async fn write<T, F>(db: &Db, tenant: &Tenant, idem: Idem, status: StatusCode, work: F) -> ApiResult<Response>
where
    T: Serialize + Send + 'static,
    F: for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, platform::Result<T>>,
{
    write_then_last(db, tenant, idem, status, move |tx| {
        let done = work(tx);
        Box::pin(async move { Ok((done.await?, ())) })
    })
    .await
}

/// `write` whose work ends with a step run after the answer is recorded, just before
/// the commit (its failure undoes everything, the record included). A redemption takes
/// stock there, so the row every buyer of a flash sale queues on is held only for that
/// statement and the commit.
pub async fn write_then_last<T, F, L>(
    db: &Db,
    tenant: &Tenant,
    idem: Idem,
    status: StatusCode,
    work: F,
) -> ApiResult<Response>
where
    T: Serialize,
    L: LastStep,
    F: for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, platform::Result<(T, L)>>,
{
    let mut tx = db.tenant_tx(&tenant.cluster, &tenant.schema_name).await?;
    if let Some(replay) = idempotency::begin(&mut tx, &idem.scope, &idem.key, &idem.hash).await? {
        tx.commit().await.map_err(Error::from)?;
        return Ok(replayed(replay));
    }
    let (out, last) = work(&mut tx).await?;
    let body = serde_json::to_value(&out).map_err(|e| Error::Internal(e.into()))?;
    idempotency::finish(&mut tx, &idem.scope, &idem.key, status.as_u16(), &body).await?;
    last.run(&mut tx).await?;
    tx.commit().await.map_err(Error::from)?;
    Ok((status, axum::Json(body)).into_response())
}

/// The step `write_then_last` runs after recording the answer.
pub trait LastStep {
    fn run(self, conn: &mut PgConnection) -> BoxFuture<'_, platform::Result<()>>;
}

impl LastStep for () {
    fn run(self, _: &mut PgConnection) -> BoxFuture<'_, platform::Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

impl LastStep for platform::mall::redeem::StockTake {
    fn run(self, conn: &mut PgConnection) -> BoxFuture<'_, platform::Result<()>> {
        Box::pin(self.apply(conn))
    }
}

fn replayed(replay: idempotency::Replay) -> Response {
    let status = StatusCode::from_u16(replay.status).unwrap_or(StatusCode::OK);
    let mut resp = (status, axum::Json(replay.body)).into_response();
    resp.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    resp
}
