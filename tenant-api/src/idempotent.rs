//! Writes that move points take an `Idempotency-Key` header (SPEC §5, L8). The key is
//! claimed in the same transaction as the write (see `platform::idempotency`), so a
//! replay returns the first response and concurrent duplicates run once.
//!
//! A handler takes the request as `IdempotentJson` (or `IdempotentEmpty` for writes
//! without a body), checks its permission, then `open`s it: the key is checked and the
//! body typed there, so a caller without the permission learns nothing else first. The
//! OpenAPI document names the header with `IdempotencyKey`, one definition for all.

use axum::extract::{FromRequest, FromRequestParts, OriginalUri, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use platform::audit::Actor;
use platform::db::Db;
use platform::directory::Tenant;
use platform::tx::TenantTx;
use platform::{Error, idempotency};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::PgConnection;

use crate::error::ApiResult;
use crate::extract::Json;

/// The `Idempotency-Key` header, as the OpenAPI document describes it on every write
/// that takes one.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // read by the OpenAPI derive only
pub struct IdempotencyKey {
    /// Unique per write (1 to 200 visible ASCII characters): the same key again returns
    /// the first answer; with another body it is refused.
    #[param(rename = "Idempotency-Key")]
    idempotency_key: String,
}

/// A request's idempotency identity (who is writing is added by `write`).
pub struct Idem {
    key: String,
    method: String,
    path: String,
    hash: Vec<u8>,
}

fn parts_of(
    headers: &HeaderMap,
    parts_uri: &axum::http::Uri,
    original: Option<&OriginalUri>,
) -> (Option<String>, String) {
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_string);
    let path = original.map_or_else(|| parts_uri.path().to_string(), |o| o.0.path().to_string());
    (key, path)
}

impl Idem {
    fn new(key: Option<&str>, method: &str, path: String, body: &serde_json::Value) -> Result<Self, Error> {
        let key = idempotency::check_key(key)?;
        Ok(Self { key, method: method.to_string(), hash: idempotency::request_hash(method, &path, body), path })
    }

    fn scope(&self, actor: &Actor) -> String {
        format!("{} {} {}", actor.label, self.method, self.path)
    }
}

/// A write with a JSON body, before its key is checked and its body typed.
pub struct IdempotentJson {
    key: Option<String>,
    method: String,
    path: String,
    body: serde_json::Value,
}

impl IdempotentJson {
    /// Checks the key and reads the body strictly (`input`) as `T`.
    pub fn open<T: DeserializeOwned>(self) -> Result<(Idem, T), Error> {
        let idem = Idem::new(self.key.as_deref(), &self.method, self.path, &self.body)?;
        Ok((idem, crate::input::from_value(self.body)?))
    }
}

impl<S: Send + Sync> FromRequest<S> for IdempotentJson {
    type Rejection = Response;
    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        let (key, path) = parts_of(req.headers(), req.uri(), req.extensions().get::<OriginalUri>());
        let method = req.method().to_string();
        let Json(body) = Json::<serde_json::Value>::from_request(req, state).await?;
        Ok(Self { key, method, path, body })
    }
}

/// A write without a body, before its key is checked.
pub struct IdempotentEmpty {
    key: Option<String>,
    method: String,
    path: String,
}

impl IdempotentEmpty {
    pub fn open(self) -> Result<Idem, Error> {
        Idem::new(self.key.as_deref(), &self.method, self.path, &serde_json::Value::Null)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IdempotentEmpty {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Response> {
        let (key, path) = parts_of(&parts.headers, &parts.uri, parts.extensions.get::<OriginalUri>());
        Ok(Self { key, method: parts.method.to_string(), path })
    }
}

/// Runs `work` in a tenant transaction for `actor`, guarded by the key; answers
/// `status` with its result, or replays the first answer.
pub async fn write<T: Serialize>(
    db: &Db,
    tenant: &Tenant,
    actor: &Actor,
    idem: Idem,
    status: StatusCode,
    work: impl AsyncFnOnce(&mut TenantTx) -> platform::Result<T>,
) -> ApiResult<Response> {
    write_then_last(db, tenant, actor, idem, status, async |tx| Ok((work(tx).await?, ()))).await
}

/// `write` whose work ends with a step run after the answer is recorded, just before
/// the commit (its failure undoes everything, the record included). A redemption takes
/// stock there, so the row every buyer of a flash sale queues on is held only for that
/// statement and the commit.
pub async fn write_then_last<T: Serialize, L: LastStep>(
    db: &Db,
    tenant: &Tenant,
    actor: &Actor,
    idem: Idem,
    status: StatusCode,
    work: impl AsyncFnOnce(&mut TenantTx) -> platform::Result<(T, L)>,
) -> ApiResult<Response> {
    let scope = idem.scope(actor);
    let mut tx = db.begin(tenant, actor).await?;
    if let Some(replay) = idempotency::begin(&mut tx, &scope, &idem.key, &idem.hash).await? {
        tx.commit().await?;
        return Ok(replayed(replay));
    }
    let out = work(&mut tx).await;
    let recorded = record(out, (db, tenant), &mut tx, (&scope, &idem.key), status).await;
    let body = tx.finish(recorded).await?;
    Ok((status, axum::Json(body)).into_response())
}

/// Answers `refusal` to a write refused before it needed a transaction, unless its key
/// already has a first answer, which is replayed (`idempotency::recorded`). Nothing is
/// written: a refusal is never recorded, as in `write`.
pub async fn refuse_unless_replayed(
    db: &Db,
    tenant: &Tenant,
    actor: &Actor,
    idem: Idem,
    refusal: Error,
) -> ApiResult<Response> {
    let pool = db.cluster(&tenant.cluster)?;
    match idempotency::recorded(pool, &tenant.schema_name, &idem.scope(actor), &idem.key, &idem.hash).await? {
        Some(replay) => Ok(replayed(replay)),
        None => Err(refusal.into()),
    }
}

/// Records the work's answer under the key, then runs its last step: the answer's body.
async fn record<T: Serialize, L: LastStep>(
    out: platform::Result<(T, L)>,
    (db, tenant): (&Db, &Tenant),
    tx: &mut TenantTx,
    (scope, key): (&str, &str),
    status: StatusCode,
) -> platform::Result<serde_json::Value> {
    let (out, last) = out?;
    let body = serde_json::to_value(&out).map_err(|e| Error::Internal(e.into()))?;
    idempotency::finish(tx, scope, key, status.as_u16(), &body).await?;
    last.run(db, tenant, tx).await?;
    Ok(body)
}

/// The step `write_then_last` runs after recording the answer.
pub trait LastStep {
    fn run<'a>(self, db: &'a Db, tenant: &'a Tenant, conn: &'a mut PgConnection)
    -> BoxFuture<'a, platform::Result<()>>;
}

impl LastStep for () {
    fn run<'a>(self, _: &'a Db, _: &'a Tenant, _: &'a mut PgConnection) -> BoxFuture<'a, platform::Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

impl LastStep for platform::mall::redeem::StockTake {
    fn run<'a>(
        self,
        db: &'a Db,
        tenant: &'a Tenant,
        conn: &'a mut PgConnection,
    ) -> BoxFuture<'a, platform::Result<()>> {
        Box::pin(self.apply(db, tenant, conn))
    }
}

fn replayed(replay: idempotency::Replay) -> Response {
    let status = StatusCode::from_u16(replay.status).unwrap_or(StatusCode::OK);
    let mut resp = (status, axum::Json(replay.body)).into_response();
    resp.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    resp
}
