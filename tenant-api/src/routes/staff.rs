//! Merchant staff routes: `/v1/tenants/{tenant}/staff/...`. Each names the permission
//! it needs; every write is audited.

use axum::extract::State;
use axum::http::StatusCode;
use platform::audit::{self, AuditEntry};
use platform::auth::api_keys::{self, ApiKey, CreatedApiKey, NewApiKey};
use platform::auth::tokens::TokenPair;
use platform::members::{self, Member, MemberFilter, MemberRecord};
use platform::rbac::{Permission, Role};
use platform::segments::{self, SegmentParam};
use platform::settings::TenantSettings;
use platform::staff::{self, NewStaff, Scope, StaffUser};
use platform::tenancy::{self, SettingsWrite};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;

use super::{RefreshRequest, StaffLogin, tokens};
use crate::doc::{Conflict, Forbidden, Invalid, NotFound, TenantSlug, TooMany, Unauthorized};
use crate::error::ApiResult;
use crate::extract::{ClientAddr, Json, PathId, Query, StaffAuth, TenantPath};
use crate::input;
use crate::pagination::{Page, PageQuery};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    paths![
        login;
        refresh;
        logout;
        me;
        list_staff, create_staff;
        update_staff;
        list_keys, create_key;
        revoke_key;
        audit_log;
        get_settings, put_settings, patch_settings;
        list_members;
        get_member;
    ]
}

/// Merchant staff login.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/auth/login", tag = "staff", params(TenantSlug),
    request_body = StaffLogin, responses((status = 200, body = TokenPair), Unauthorized, Forbidden, TooMany))]
async fn login(
    State(state): State<AppState>,
    TenantPath(tenant): TenantPath,
    ClientAddr(addr): ClientAddr,
    Json(body): Json<StaffLogin>,
) -> ApiResult<Json<TokenPair>> {
    let account = format!("{}:staff:{}", tenant.id, tokens::email_key(&body.email));
    let login = staff::authenticate(state.db.control(), Scope::Tenant(tenant.id), &body.email, &body.password);
    let user = tokens::throttled(&state, &account, &addr, login).await?;
    Ok(Json(tokens::staff_pair(&state, &user).await?))
}

/// Exchanges a refresh token for a new pair.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/auth/refresh", tag = "staff", params(TenantSlug),
    request_body = RefreshRequest, responses((status = 200, body = TokenPair), Unauthorized))]
async fn refresh(
    State(state): State<AppState>,
    TenantPath(tenant): TenantPath,
    Json(body): Json<RefreshRequest>,
) -> ApiResult<Json<TokenPair>> {
    let pair = tokens::staff_refresh(&state, &body.refresh_token, |u| u.tenant_id == Some(tenant.id)).await?;
    Ok(Json(pair))
}

/// Ends the session of a refresh token.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/auth/logout", tag = "staff", params(TenantSlug),
    request_body = RefreshRequest, responses((status = 204)))]
async fn logout(
    State(state): State<AppState>,
    TenantPath(_t): TenantPath,
    Json(body): Json<RefreshRequest>,
) -> ApiResult<StatusCode> {
    tokens::staff_logout(&state, &body.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, utoipa::ToSchema)]
struct Me {
    staff: StaffUser,
    tenant: platform::directory::Tenant,
    /// What this role may do.
    permissions: Vec<Permission>,
}

/// The signed-in staff member, their tenant and permissions. Any role.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/me", tag = "staff", security(("staff_jwt" = [])),
    params(TenantSlug), responses((status = 200, body = Me), Unauthorized, Forbidden))]
async fn me(auth: StaffAuth) -> ApiResult<Json<Me>> {
    let user = staff::find(auth.state.db.control(), auth.staff_id).await?;
    let permissions = Permission::ALL.into_iter().filter(|p| auth.role.allows(*p)).collect();
    Ok(Json(Me { staff: user, tenant: (*auth.tenant).clone(), permissions }))
}

/// The merchant's staff. Needs `staff_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/users", tag = "staff", security(("staff_jwt" = [])),
    params(TenantSlug), responses((status = 200, body = Vec<StaffUser>), Forbidden))]
async fn list_staff(auth: StaffAuth) -> ApiResult<Json<Vec<StaffUser>>> {
    auth.require(Permission::StaffRead)?;
    Ok(Json(staff::list_for_tenant(auth.state.db.control(), auth.tenant.id).await?))
}

/// Adds a staff account. Needs `staff_manage` (owner).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/users", tag = "staff", security(("staff_jwt" = [])),
    params(TenantSlug), request_body = NewStaff,
    responses((status = 201, body = StaffUser), Forbidden, Conflict, Invalid))]
async fn create_staff(auth: StaffAuth, Json(body): Json<NewStaff>) -> ApiResult<(StatusCode, Json<StaffUser>)> {
    auth.require(Permission::StaffManage)?;
    let (scope, actor) = (Scope::Tenant(auth.tenant.id), auth.actor());
    let user = auth.state.db.control_write(async |tx| staff::create(tx, scope, &body, &actor).await).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct StaffUpdate {
    /// A merchant's staff role.
    #[schema(value_type = Option<platform::rbac::TenantRole>)]
    role: Option<Role>,
    disabled: Option<bool>,
}

/// Changes a staff member's role or disables the account (ending its sessions).
/// Needs `staff_manage`.
#[utoipa::path(patch, path = "/v1/tenants/{tenant}/staff/users/{id}", tag = "staff", security(("staff_jwt" = [])),
    params(TenantSlug, ("id" = i64, Path, description = "staff id")), request_body = StaffUpdate,
    responses((status = 200, body = StaffUser), Forbidden, NotFound, Conflict))]
async fn update_staff(
    auth: StaffAuth,
    PathId(id): PathId<platform::ids::StaffId>,
    Json(body): Json<StaffUpdate>,
) -> ApiResult<Json<StaffUser>> {
    auth.require(Permission::StaffManage)?;
    let user =
        staff::update_in_tenant(auth.state.db.control(), auth.tenant.id, id, body.role, body.disabled, &auth.actor())
            .await?;
    Ok(Json(user))
}

/// The merchant's partner API keys (never their secrets). Needs `api_keys_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/api-keys", tag = "staff", security(("staff_jwt" = [])),
    params(TenantSlug), responses((status = 200, body = Vec<ApiKey>), Forbidden))]
async fn list_keys(auth: StaffAuth) -> ApiResult<Json<Vec<ApiKey>>> {
    auth.require(Permission::ApiKeysRead)?;
    Ok(Json(api_keys::list(auth.state.db.control(), auth.tenant.id).await?))
}

/// Creates a partner API key; the response is the only time its secret is shown.
/// Needs `api_keys_manage`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/api-keys", tag = "staff", security(("staff_jwt" = [])),
    params(TenantSlug), request_body = NewApiKey, responses((status = 201, body = CreatedApiKey), Forbidden, Invalid))]
async fn create_key(auth: StaffAuth, Json(body): Json<NewApiKey>) -> ApiResult<(StatusCode, Json<CreatedApiKey>)> {
    auth.require(Permission::ApiKeysManage)?;
    let key = api_keys::create(auth.state.db.control(), auth.tenant.id, &body, &auth.actor()).await?;
    Ok((StatusCode::CREATED, Json(key)))
}

/// Revokes an API key at once. Needs `api_keys_manage`.
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/staff/api-keys/{id}", tag = "staff", security(("staff_jwt" = [])),
    params(TenantSlug, ("id" = i64, Path, description = "key id")),
    responses((status = 200, body = ApiKey), Forbidden, NotFound))]
async fn revoke_key(auth: StaffAuth, PathId(id): PathId<i64>) -> ApiResult<Json<ApiKey>> {
    auth.require(Permission::ApiKeysManage)?;
    Ok(Json(api_keys::revoke(auth.state.db.control(), auth.tenant.id, id, &auth.actor()).await?))
}

/// The merchant's audit log, newest first. Needs `audit_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/audit-log", tag = "staff", security(("staff_jwt" = [])),
    params(TenantSlug, PageQuery), responses((status = 200, body = Page<AuditEntry>), Forbidden))]
async fn audit_log(auth: StaffAuth, Query(q): Query<PageQuery>) -> ApiResult<Json<Page<AuditEntry>>> {
    auth.require(Permission::AuditRead)?;
    let (before, limit) = q.bounds()?;
    let items = audit::list_for_tenant(auth.state.db.control(), auth.tenant.id, before, limit).await?;
    Ok(Json(Page::new(items, limit, |e| e.id)))
}

/// The mall's name with its settings: one object, the settings' fields and `name`.
#[derive(Serialize)]
struct MallSettings {
    name: String,
    #[serde(flatten)]
    settings: TenantSettings,
}

/// The document's shape of the settings with `name` beside their fields (written by hand:
/// a derived flatten would keep the settings' `additionalProperties: false` apart from
/// `name`). For a change (`patch`) every field is optional and `limits` is left out.
fn settings_with_name(patch: bool) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
    let mut schema = <TenantSettings as utoipa::PartialSchema>::schema();
    if let RefOr::T(Schema::Object(o)) = &mut schema {
        let name = ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(200))
            .pattern(Some("\\S"))
            .description(Some("The mall's display name."));
        o.properties.insert("name".to_string(), name.into());
        if patch {
            o.required.clear();
            o.properties.remove("limits");
        } else {
            o.required.push("name".to_string());
        }
    }
    schema
}

impl utoipa::PartialSchema for MallSettings {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        settings_with_name(false)
    }
}
impl utoipa::ToSchema for MallSettings {
    fn schemas(out: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        <TenantSettings as utoipa::ToSchema>::schemas(out);
    }
}

/// The mall's name and settings (T6). Needs `settings_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/settings", tag = "staff", security(("staff_jwt" = [])),
    params(TenantSlug), responses((status = 200, body = MallSettings), Forbidden))]
async fn get_settings(auth: StaffAuth) -> ApiResult<Json<MallSettings>> {
    auth.require(Permission::SettingsRead)?;
    let settings = tenancy::settings(auth.state.db.control(), auth.tenant.id).await?;
    Ok(Json(MallSettings { name: auth.tenant.name.clone(), settings }))
}

/// A change of some of the mall's settings: the PATCH body, read as JSON and merged into
/// what is stored (documented only).
struct SettingsChange;

impl utoipa::PartialSchema for SettingsChange {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        settings_with_name(true)
    }
}
impl utoipa::ToSchema for SettingsChange {
    fn schemas(out: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        <TenantSettings as utoipa::ToSchema>::schemas(out);
    }
}

/// A staff write of the mall's settings (PUT or PATCH): stored, then evicted from every
/// instance's directory cache.
async fn write_settings(
    auth: &StaffAuth,
    body: &serde_json::Value,
    mode: SettingsWrite,
) -> ApiResult<Json<MallSettings>> {
    auth.require(Permission::SettingsWrite)?;
    let (name, settings) = tenancy::write_mall_settings(
        auth.state.db.control(),
        &auth.tenant,
        body,
        mode,
        &auth.actor(),
        input::from_value,
    )
    .await?;
    auth.state.directory.evict(&auth.tenant.slug).await;
    Ok(Json(MallSettings { name, settings }))
}

/// Changes some of the mall's settings: send only the fields to change, e.g.
/// `{"name": "茶香商城", "points_name": "茶豆", "time_zone": "Asia/Shanghai"}` (a nested
/// object such as `expiry` is replaced whole). Needs `settings_write` (owner).
#[utoipa::path(patch, path = "/v1/tenants/{tenant}/staff/settings", tag = "staff", security(("staff_jwt" = [])),
    params(TenantSlug),
    request_body(content = SettingsChange, description = "`name` and any fields of TenantSettings except `limits`"),
    responses((status = 200, body = MallSettings), Forbidden, Invalid))]
async fn patch_settings(auth: StaffAuth, Json(body): Json<serde_json::Value>) -> ApiResult<Json<MallSettings>> {
    write_settings(&auth, &body, SettingsWrite::Merge).await
}

/// Replaces the mall's settings (a field not sent takes its default); `name` may be sent
/// too (kept when absent), so what GET answers can be sent back. Needs `settings_write`
/// (owner). `limits` are set by the platform operator: the stored ones are kept and
/// answered.
#[utoipa::path(put, path = "/v1/tenants/{tenant}/staff/settings", tag = "staff", security(("staff_jwt" = [])),
    params(TenantSlug), request_body = TenantSettings,
    responses((status = 200, body = MallSettings), Forbidden, Invalid))]
async fn put_settings(auth: StaffAuth, Json(body): Json<serde_json::Value>) -> ApiResult<Json<MallSettings>> {
    write_settings(&auth, &body, SettingsWrite::Replace).await
}

/// The mall's members, newest first, filtered (M5): a saved segment, and/or tag, level,
/// inactivity, balance range, registration days or a search. Needs `members_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/members", tag = "staff", security(("staff_jwt" = [])),
    params(TenantSlug, SegmentParam, MemberFilter, PageQuery),
    responses((status = 200, body = Page<Member>), Forbidden, NotFound, Invalid))]
async fn list_members(
    auth: StaffAuth,
    Query(seg): Query<SegmentParam>,
    Query(f): Query<MemberFilter>,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Page<Member>>> {
    auth.require(Permission::MembersRead)?;
    let (before, limit) = q.bounds()?;
    let items = auth
        .state
        .db
        .read(&auth.tenant, &auth.actor(), async |tx| {
            let filter = segments::resolve(tx, &seg, &f).await?;
            members::list(tx, &filter, before, limit).await
        })
        .await?;
    Ok(Json(Page::new(items, limit, |m| m.id)))
}

/// One member with tags and level. Needs `members_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/members/{id}", tag = "staff", security(("staff_jwt" = [])),
    params(TenantSlug, ("id" = i64, Path, description = "member id")),
    responses((status = 200, body = MemberRecord), Forbidden, NotFound))]
async fn get_member(auth: StaffAuth, PathId(id): PathId<i64>) -> ApiResult<Json<MemberRecord>> {
    Ok(Json(auth.read(Permission::MembersRead, async |tx| members::record(tx, id).await).await?))
}
