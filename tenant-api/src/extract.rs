//! Extractors: JSON/query/path with JSON errors, and one credential extractor per
//! audience. Every tenant-addressed extractor resolves the tenant from the `{tenant}`
//! path segment and refuses a credential issued for another tenant. Each credential
//! carries the app state (`auth.state`) and runs its holder's transactions (`auth.read`,
//! `auth.write`; staff and partner keys check their permission or scope first).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use platform::Error;
use platform::auth::api_keys::{self, PartnerKey};
use platform::auth::tokens::{Audience, Claims, subject_id};
use platform::directory::Tenant;
use platform::ids::StaffId;
use platform::rbac::{Permission, Role};
use platform::rules::admission::BatchSlot;
use platform::tx::{AllianceTx, TenantTx};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ApiResult, json_error, json_error_with_cause};
use crate::input;
use crate::state::AppState;

/// `axum::Json` whose rejections are JSON errors: 400 for unreadable bodies, 415 without
/// a JSON content type, 422 for bodies that parse but do not fit (missing or unknown
/// fields, wrong types, text or numbers PostgreSQL cannot keep: see `input`), naming
/// the field.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = Response;
    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        let value = match axum::Json::<serde_json::Value>::from_request(req, state).await {
            Ok(axum::Json(v)) => v,
            Err(r) => {
                return Err(match r {
                    JsonRejection::JsonSyntaxError(e) => {
                        json_error_with_cause(StatusCode::BAD_REQUEST, "malformed_json", e.body_text())
                    }
                    JsonRejection::MissingJsonContentType(_) => json_error(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        "expected_json",
                        "send the body as JSON with Content-Type: application/json",
                    ),
                    other => json_error_with_cause(other.status(), "unreadable_body", other.body_text()),
                });
            }
        };
        input::check(&value).map_err(|e| ApiError(e).into_response())?;
        input::from_value(value).map(Self).map_err(|e| ApiError(e).into_response())
    }
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Query parameters whose NUL characters are stripped from free-text search (`q`).
const QUERY_TEXT_PARAMS: [&str; 1] = ["q"];

/// Query string with a JSON 400 on bad input. A NUL character is refused (422 naming
/// the parameter), except in free-text search, where it is dropped.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Response> {
        let raw = parts.uri.query().unwrap_or_default();
        let mut pairs = Vec::new();
        for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
            if let Some(problem) = input::text_problem(&k) {
                let field = k.replace('\0', "\\u0000");
                return Err(ApiError(Error::invalid_field(&field, format!("the name {problem}"))).into_response());
            }
            let v = match input::text_problem(&v) {
                None => v.into_owned(),
                Some(_) if QUERY_TEXT_PARAMS.contains(&k.as_ref()) => v.replace('\0', ""),
                Some(problem) => return Err(ApiError(Error::invalid_field(&k, problem)).into_response()),
            };
            pairs.push((k.into_owned(), v));
        }
        let cleaned = form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
        serde_urlencoded::from_str::<T>(&cleaned).map(Self).map_err(|e| {
            json_error_with_cause(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                format!("failed to read the query string: {e}"),
            )
        })
    }
}

/// Path parameters with a JSON 404 when they do not parse (an id that is not a number
/// names nothing, nor does a segment with a NUL character).
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let not_found = |m: String| json_error(StatusCode::NOT_FOUND, "not_found", m);
        let raw = RawPathParams::from_request_parts(parts, state).await.map_err(|e| not_found(e.body_text()))?;
        if raw.iter().any(|(_, v)| input::text_problem(v).is_some()) {
            return Err(not_found("no such resource".into()));
        }
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Self(p.0))
            .map_err(|e: PathRejection| not_found(e.body_text()))
    }
}

/// The `{id}` of a `/…/{tenant}/…/{id}` or `/…/{alliance}/…/{id}` path, with `Path`'s
/// 404 when it does not parse. The slug before it is the credential extractor's.
pub struct PathId<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for PathId<T> {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let Path((_slug, id)) = Path::<(String, T)>::from_request_parts(parts, state).await?;
        Ok(Self(id))
    }
}

/// The client's address (for login throttling).
pub struct ClientAddr(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let addr = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string())
            .unwrap_or_else(|| "unknown".into());
        Ok(Self(addr))
    }
}

/// The request id (set by the request-id layer), for the audit log.
pub fn request_id(parts: &Parts) -> Option<String> {
    parts.headers.get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_string)
}

fn path_param<'a>(params: &'a RawPathParams, name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
}

/// The active tenant addressed by the `{tenant}` path segment.
pub struct TenantPath(pub Arc<Tenant>);

impl FromRequestParts<AppState> for TenantPath {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(t) = parts.extensions.get::<Arc<Tenant>>() {
            return Ok(Self(t.clone()));
        }
        // Errors of this request speak the mall's language (unless Accept-Language
        // asks for another).
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| Error::not_found("tenant_not_found", "no such mall"))?;
        let slug = path_param(&params, "tenant").ok_or_else(|| Error::not_found("tenant_not_found", "no such mall"))?;
        let t = state.directory.resolve_active(slug).await?;
        platform::i18n::RequestLang::note_mall(&t.settings.locale);
        parts.extensions.insert(t.clone());
        Ok(Self(t))
    }
}

fn bearer(parts: &Parts) -> Result<&str, Error> {
    bearer_token(&parts.headers)
}

/// The token of an `Authorization: Bearer …` header.
pub(crate) fn bearer_token(headers: &axum::http::HeaderMap) -> Result<&str, Error> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| Error::unauthenticated("missing_credentials", "send Authorization: Bearer <access token>"))?;
    value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::unauthenticated("missing_credentials", "send Authorization: Bearer <access token>"))
}

/// The member token's sign-in is live and the member active (revocation bites on the
/// next request).
pub(crate) async fn member_session(
    state: &AppState,
    tenant: &Tenant,
    member_id: i64,
    claims: &Claims,
) -> Result<(), Error> {
    let family = claims.sid.ok_or_else(|| Error::unauthenticated("token_invalid", "the access token is not valid"))?;
    platform::auth::sessions::check_member(state.db.cluster(&tenant.cluster)?, &tenant.schema_name, member_id, family)
        .await
}

/// The staff token's sign-in is live, the account enabled and its role unchanged.
async fn staff_session(state: &AppState, staff_id: StaffId, claims: &Claims) -> Result<(), Error> {
    let family = claims.sid.ok_or_else(|| Error::unauthenticated("token_invalid", "the access token is not valid"))?;
    let role = claims.role.as_deref().unwrap_or_default();
    platform::auth::sessions::check_staff(state.db.control(), staff_id, family, role).await
}

fn check_tenant(claims: &Claims, tenant: &Tenant) -> Result<(), Error> {
    if claims.tid != Some(tenant.id) {
        return Err(Error::forbidden("wrong_tenant", "this credential belongs to another mall"));
    }
    Ok(())
}

/// A signed-in member of the addressed tenant.
pub struct MemberAuth {
    pub tenant: Arc<Tenant>,
    pub member_id: i64,
    /// The app state: a handler that takes a credential needs no `State` extractor.
    pub state: AppState,
}

impl MemberAuth {
    /// The member, as the actor of their own reads and writes.
    pub fn actor(&self) -> platform::audit::Actor {
        platform::audit::Actor::member(self.member_id)
    }

    /// Runs `work` in a read-only transaction of the mall, as this member.
    pub async fn read<T>(&self, work: impl AsyncFnOnce(&mut TenantTx) -> platform::Result<T>) -> ApiResult<T> {
        Ok(self.state.db.read(&self.tenant, &self.actor(), work).await?)
    }

    /// Runs `work` in a transaction of the mall, as this member.
    pub async fn write<T>(&self, work: impl AsyncFnOnce(&mut TenantTx) -> platform::Result<T>) -> ApiResult<T> {
        Ok(self.state.db.write(&self.tenant, &self.actor(), work).await?)
    }
}

impl FromRequestParts<AppState> for MemberAuth {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let TenantPath(tenant) = TenantPath::from_request_parts(parts, state).await?;
        let claims = state.tokens.verify(bearer(parts)?, Audience::Member)?;
        check_tenant(&claims, &tenant)?;
        let member_id = subject_id(&claims)?;
        member_session(state, &tenant, member_id, &claims).await?;
        Ok(Self { member_id, tenant, state: state.clone() })
    }
}

/// The member a public route's caller is, when it sends a valid member token of the
/// addressed tenant; anyone else (no token, another mall's, expired) is anonymous. Only
/// for counting visits: it never admits to anything, so the session is not looked up.
pub struct MaybeMember(pub Option<i64>);

impl FromRequestParts<AppState> for MaybeMember {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let TenantPath(tenant) = TenantPath::from_request_parts(parts, state).await?;
        let Ok(token) = bearer(parts) else { return Ok(Self(None)) };
        let member = state
            .tokens
            .verify(token, Audience::Member)
            .ok()
            .filter(|c| check_tenant(c, &tenant).is_ok())
            .and_then(|c| subject_id(&c).ok());
        Ok(Self(member))
    }
}

/// Signed-in staff of the addressed tenant.
pub struct StaffAuth {
    pub tenant: Arc<Tenant>,
    pub staff_id: StaffId,
    pub role: Role,
    pub request_id: Option<String>,
    /// The app state: a handler that takes a credential needs no `State` extractor.
    pub state: AppState,
}

impl StaffAuth {
    /// Refuses with 403 unless the role grants `p`.
    pub fn require(&self, p: Permission) -> Result<(), Error> {
        if self.role.allows(p) {
            Ok(())
        } else {
            Err(Error::forbidden(
                "permission_denied",
                format!("the {} role lacks the {} permission", self.role.as_str(), p.as_str()),
            ))
        }
    }

    pub fn actor(&self) -> platform::audit::Actor {
        platform::audit::Actor {
            kind: platform::audit::ActorKind::Staff,
            id: Some(self.staff_id.get()),
            label: format!("staff:{}", self.staff_id),
            request_id: self.request_id.clone(),
        }
    }

    /// Refuses with 403 unless the role grants `p`, then runs `work` in a read-only
    /// transaction of the mall, as this staff member.
    pub async fn read<T>(
        &self,
        p: Permission,
        work: impl AsyncFnOnce(&mut TenantTx) -> platform::Result<T>,
    ) -> ApiResult<T> {
        self.require(p)?;
        Ok(self.state.db.read(&self.tenant, &self.actor(), work).await?)
    }

    /// Refuses with 403 unless the role grants `p`, then runs `work` in a transaction of
    /// the mall, as this staff member.
    pub async fn write<T>(
        &self,
        p: Permission,
        work: impl AsyncFnOnce(&mut TenantTx) -> platform::Result<T>,
    ) -> ApiResult<T> {
        self.require(p)?;
        Ok(self.state.db.write(&self.tenant, &self.actor(), work).await?)
    }
}

impl FromRequestParts<AppState> for StaffAuth {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let TenantPath(tenant) = TenantPath::from_request_parts(parts, state).await?;
        let claims = state.tokens.verify(bearer(parts)?, Audience::Staff)?;
        check_tenant(&claims, &tenant)?;
        let role = claims
            .role
            .as_deref()
            .and_then(Role::parse)
            .filter(|r| r.is_tenant_role())
            .ok_or_else(|| Error::unauthenticated("token_invalid", "the access token is not valid"))?;
        let staff_id = StaffId::new(subject_id(&claims)?);
        staff_session(state, staff_id, &claims).await?;
        Ok(Self { staff_id, role, tenant, request_id: request_id(parts), state: state.clone() })
    }
}

/// The signed-in platform operator.
pub struct PlatformAuth {
    pub staff_id: StaffId,
    pub request_id: Option<String>,
    /// The app state: a handler that takes a credential needs no `State` extractor.
    pub state: AppState,
}

impl PlatformAuth {
    pub fn actor(&self) -> platform::audit::Actor {
        platform::audit::Actor {
            kind: platform::audit::ActorKind::Staff,
            id: Some(self.staff_id.get()),
            label: format!("platform:{}", self.staff_id),
            request_id: self.request_id.clone(),
        }
    }
}

impl FromRequestParts<AppState> for PlatformAuth {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let claims = state.tokens.verify(bearer(parts)?, Audience::Platform)?;
        if claims.role.as_deref() != Some(Role::PlatformAdmin.as_str()) || claims.tid.is_some() {
            return Err(Error::unauthenticated("token_invalid", "the access token is not valid").into());
        }
        let staff_id = StaffId::new(subject_id(&claims)?);
        staff_session(state, staff_id, &claims).await?;
        Ok(Self { staff_id, request_id: request_id(parts), state: state.clone() })
    }
}

/// A signed-in alliance admin of the alliance addressed by `{alliance}`.
pub struct AllianceAuth {
    pub alliance: platform::tenancy::Alliance,
    pub staff_id: StaffId,
    /// The app state: a handler that takes a credential needs no `State` extractor.
    pub state: AppState,
}

impl AllianceAuth {
    pub fn actor(&self) -> platform::audit::Actor {
        platform::audit::Actor {
            kind: platform::audit::ActorKind::Staff,
            id: Some(self.staff_id.get()),
            label: format!("alliance:{}", self.staff_id),
            request_id: None,
        }
    }

    /// Runs `work` in a read-only transaction of the alliance's schema, as this admin.
    pub async fn read<T>(&self, work: impl AsyncFnOnce(&mut AllianceTx) -> platform::Result<T>) -> ApiResult<T> {
        Ok(self.state.db.alliance_read(&self.alliance, &self.actor(), work).await?)
    }

    /// Runs `work` in a transaction of the alliance's schema, as this admin.
    pub async fn write<T>(&self, work: impl AsyncFnOnce(&mut AllianceTx) -> platform::Result<T>) -> ApiResult<T> {
        Ok(self.state.db.alliance_write(&self.alliance, &self.actor(), work).await?)
    }
}

impl FromRequestParts<AppState> for AllianceAuth {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| Error::not_found("alliance_not_found", "no such alliance"))?;
        let slug = path_param(&params, "alliance")
            .ok_or_else(|| Error::not_found("alliance_not_found", "no such alliance"))?
            .to_string();
        let claims = state.tokens.verify(bearer(parts)?, Audience::Alliance)?;
        let alliance = platform::tenancy::find_alliance(state.db.control(), &slug).await?;
        if claims.aid != Some(alliance.id) {
            return Err(Error::forbidden("wrong_alliance", "this credential belongs to another alliance").into());
        }
        let staff_id = StaffId::new(subject_id(&claims)?);
        staff_session(state, staff_id, &claims).await?;
        Ok(Self { staff_id, alliance, state: state.clone() })
    }
}

/// A partner server holding an API key of the addressed tenant (`X-Api-Key` header).
pub struct PartnerAuth {
    pub tenant: Arc<Tenant>,
    pub key: PartnerKey,
    /// The app state: a handler that takes a credential needs no `State` extractor.
    pub state: AppState,
}

impl PartnerAuth {
    /// The partner's key, as the actor of its writes.
    pub fn actor(&self) -> platform::audit::Actor {
        platform::audit::Actor::partner(self.key.key_id)
    }

    /// Refuses with 403 unless the key has `scope`, then runs `work` in a read-only
    /// transaction of the mall, as this key.
    pub async fn read<T>(
        &self,
        scope: &str,
        work: impl AsyncFnOnce(&mut TenantTx) -> platform::Result<T>,
    ) -> ApiResult<T> {
        self.key.require(scope)?;
        Ok(self.state.db.read(&self.tenant, &self.actor(), work).await?)
    }

    /// Refuses with 403 unless the key has `scope`, then runs `work` in a transaction of
    /// the mall, as this key.
    pub async fn write<T>(
        &self,
        scope: &str,
        work: impl AsyncFnOnce(&mut TenantTx) -> platform::Result<T>,
    ) -> ApiResult<T> {
        self.key.require(scope)?;
        Ok(self.state.db.write(&self.tenant, &self.actor(), work).await?)
    }
}

impl FromRequestParts<AppState> for PartnerAuth {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let TenantPath(tenant) = TenantPath::from_request_parts(parts, state).await?;
        let presented = parts
            .headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Error::unauthenticated("missing_credentials", "send X-Api-Key: <key>"))?;
        let key = api_keys::authenticate(state.db.control(), tenant.id, presented).await?;
        Ok(Self { tenant, key, state: state.clone() })
    }
}

/// One of the addressed tenant's event batch slots (`platform::rules::admission`), taken
/// before the request's credential is checked: a tenant's requests beyond its slots
/// wait, then are answered 429 `tenant_busy`, without using a database connection.
/// (Someone without a valid key holds a slot only while the key is checked.)
pub struct EventSlot(pub BatchSlot);

impl FromRequestParts<AppState> for EventSlot {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let TenantPath(tenant) = TenantPath::from_request_parts(parts, state).await?;
        let wait = std::time::Duration::from_millis(platform::rules::bounds::BATCH_WAIT_MS);
        Ok(Self(state.rules.admission.batch(&tenant, wait).await?))
    }
}
