//! The platform operator's routes: tenants (merchants), alliances.

use axum::http::StatusCode;
use platform::Error;
use platform::auth::tokens::TokenPair;
use platform::directory::{self, Tenant, TenantStatus};
use platform::health::FleetHealth;
use platform::sender::{self, Recorded};
use platform::settings::{TenantLimits, TenantSettings};
use platform::staff::{self, NewAllianceAdmin, NewStaff, Scope, StaffUser};
use platform::tenancy::{self, Alliance, NewAlliance, NewTenant};
use platform::tenant_archive::{self, Deleted, Imported, Tombstone};
use utoipa_axum::router::OpenApiRouter;

use super::{RefreshRequest, StaffLogin, tokens};
use crate::doc::{BadRequest, Conflict, Invalid, NotFound, TooLarge, TooMany, Unauthorized};
use crate::error::ApiResult;
use crate::extract::{ClientAddr, Json, Path, PlatformAuth, Query};
use crate::pagination::{Page, PageQuery};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    paths![
        login;
        refresh;
        logout;
        list_tenants, create_tenant;
        get_tenant, delete_tenant;
        export_tenant;
        import_tenant;
        tombstones;
        suspend_tenant;
        resume_tenant;
        set_tenant_limits;
        create_tenant_staff;
        list_alliances, create_alliance;
        create_alliance_admin;
        join_alliance, leave_alliance;
        recorded_messages;
        health;
    ]
}

/// The fleet's health: each configured PostgreSQL cluster (reachable, round trip,
/// version, tenants), the control schema's and each tenant schema's migration version
/// against the latest this server carries, and what is pending (tenants behind first,
/// at most 1000 listed). Read-only.
#[utoipa::path(get, path = "/v1/platform/health", tag = "platform", security(("platform_jwt" = [])),
    responses((status = 200, body = FleetHealth), Unauthorized))]
async fn health(auth: PlatformAuth) -> ApiResult<Json<FleetHealth>> {
    Ok(Json(platform::health::check(&auth.state.db).await?))
}

/// Platform operator login.
#[utoipa::path(post, path = "/v1/platform/auth/login", tag = "platform", request_body = StaffLogin,
    responses((status = 200, body = TokenPair), Unauthorized, TooMany))]
async fn login(
    state: axum::extract::State<AppState>,
    ClientAddr(addr): ClientAddr,
    Json(body): Json<StaffLogin>,
) -> ApiResult<Json<TokenPair>> {
    let account = format!("platform:{}", tokens::email_key(&body.email));
    let login = staff::authenticate(state.db.control(), Scope::Platform, &body.email, &body.password);
    let user = tokens::throttled(&state, &account, &addr, login).await?;
    Ok(Json(tokens::staff_pair(&state, &user).await?))
}

/// Exchanges a refresh token for a new pair (the old one is used up).
#[utoipa::path(post, path = "/v1/platform/auth/refresh", tag = "platform", request_body = RefreshRequest,
    responses((status = 200, body = TokenPair), Unauthorized))]
async fn refresh(
    state: axum::extract::State<AppState>,
    Json(body): Json<RefreshRequest>,
) -> ApiResult<Json<TokenPair>> {
    let pair = tokens::staff_refresh(&state, &body.refresh_token, |u| u.tenant_id.is_none() && u.alliance_id.is_none())
        .await?;
    Ok(Json(pair))
}

/// Ends the session of a refresh token.
#[utoipa::path(post, path = "/v1/platform/auth/logout", tag = "platform", request_body = RefreshRequest,
    responses((status = 204)))]
async fn logout(state: axum::extract::State<AppState>, Json(body): Json<RefreshRequest>) -> ApiResult<StatusCode> {
    tokens::staff_logout(&state, &body.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
struct RecordedQuery {
    /// Only messages to this phone (as stored, e.g. +8613800000001; a mainland mobile
    /// without +86 is read as one) or e-mail address.
    #[param(min_length = 1, max_length = 254)]
    destination: Option<String>,
}

/// The SMS and e-mail the platform would have sent, newest first: no gateway is wired
/// here, so the recording sender keeps them (one-time codes, reminders) for testers.
#[utoipa::path(get, path = "/v1/platform/recorded-messages", tag = "platform", security(("platform_jwt" = [])),
    params(RecordedQuery, PageQuery), responses((status = 200, body = Page<Recorded>), Unauthorized, Invalid))]
async fn recorded_messages(
    auth: PlatformAuth,
    Query(q): Query<RecordedQuery>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<Recorded>>> {
    let (before, limit) = page.bounds()?;
    let destination = q.destination.as_deref().map(|d| match platform::members::Identifier::parse(d) {
        Ok(i) => i.as_str().to_string(),
        Err(_) => d.trim().to_string(),
    });
    let items = sender::recorded(auth.state.db.control(), destination.as_deref(), before, limit).await?;
    Ok(Json(Page::new(items, limit, |m| m.id)))
}

/// Every tenant in the directory.
#[utoipa::path(get, path = "/v1/platform/tenants", tag = "platform", security(("platform_jwt" = [])),
    responses((status = 200, body = Vec<Tenant>), Unauthorized))]
async fn list_tenants(auth: PlatformAuth) -> ApiResult<Json<Vec<Tenant>>> {
    Ok(Json(directory::list(auth.state.db.control()).await?))
}

/// Creates a tenant: its directory row and its migrated schema, in one step (T1).
#[utoipa::path(post, path = "/v1/platform/tenants", tag = "platform", security(("platform_jwt" = [])),
    request_body = NewTenant, responses((status = 201, body = Tenant), Conflict, Invalid))]
async fn create_tenant(auth: PlatformAuth, Json(body): Json<NewTenant>) -> ApiResult<(StatusCode, Json<Tenant>)> {
    let t = tenancy::create_tenant(&auth.state.db, &body, &auth.actor()).await?;
    Ok((StatusCode::CREATED, Json(t)))
}

/// One tenant, whatever its status.
#[utoipa::path(get, path = "/v1/platform/tenants/{tenant}", tag = "platform", security(("platform_jwt" = [])),
    params(("tenant" = String, Path, description = "tenant slug")), responses((status = 200, body = Tenant), NotFound))]
async fn get_tenant(auth: PlatformAuth, Path(slug): Path<String>) -> ApiResult<Json<Tenant>> {
    let t = tenant_by_slug(&auth.state, &slug).await?;
    Ok(Json(t))
}

/// Downloads the archive of a mall (`.tar.gz`: manifest, tables, its staff, keys, audit
/// rows and files; see the README's "Tenant export, import and delete"), audited
/// (`tenant.export`). A mall in an alliance also records its alliance and its members'
/// shared positions (an import makes a standalone mall).
#[utoipa::path(get, path = "/v1/platform/tenants/{tenant}/export", tag = "platform", security(("platform_jwt" = [])),
    params(("tenant" = String, Path, description = "tenant slug")),
    responses((status = 200, content_type = "application/gzip", body = Vec<u8>, description = "the archive, as an attachment named `<slug>-<date>.tar.gz`"),
        Unauthorized, NotFound, Conflict))]
async fn export_tenant(auth: PlatformAuth, Path(slug): Path<String>) -> ApiResult<axum::response::Response> {
    use axum::http::header;
    use axum::response::IntoResponse;
    use tokio::io::AsyncReadExt;

    let file = std::env::temp_dir().join(format!("pointsmall-export-{}.tar.gz", uuid::Uuid::new_v4()));
    let exported =
        tenant_archive::export_audited(&auth.state.db, &auth.state.storage, &slug, &file, &auth.actor()).await;
    // Opened, then unlinked: the download reads the open file and nothing is left behind.
    let opened = match exported {
        Ok(m) => tokio::fs::File::open(&file).await.map(|f| (m, f)),
        Err(e) => {
            let _ = tokio::fs::remove_file(&file).await;
            return Err(e.into());
        }
    };
    let _ = tokio::fs::remove_file(&file).await;
    let (manifest, f) = opened.map_err(|e| Error::Internal(e.into()))?;
    let len = f.metadata().await.map_err(|e| Error::Internal(e.into()))?.len();
    let stream = futures::stream::unfold(f, |mut f| async move {
        let mut buf = vec![0u8; 64 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(buf), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    });
    let name = format!("attachment; filename=\"{}-{}.tar.gz\"", manifest.slug, manifest.exported_at.format("%Y%m%d"));
    Ok((
        [
            (header::CONTENT_TYPE, "application/gzip".to_string()),
            (header::CONTENT_DISPOSITION, name),
            (header::CONTENT_LENGTH, len.to_string()),
        ],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}

/// Where an uploaded archive goes.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ImportQuery {
    /// The slug to import the mall under (default: the archive's own).
    #[param(min_length = 2, max_length = 40, pattern = "^[a-z][a-z0-9-]*$")]
    slug: Option<String>,
}

/// Imports a mall archive (the body: a `.tar.gz` as downloaded from the export route, at
/// most 512 MiB) as a new mall, under `slug` or the archive's own. All or nothing, with
/// the CLI's checks: every entry is checked against the manifest (400
/// `archive_invalid`, `archive_checksum_mismatch`), the archive must come from this
/// tenant migration (409 `archive_version_unsupported`), the slug must be free and never
/// deleted (409 `slug_taken`, `slug_tombstoned`), `ledger verify` must pass on the
/// loaded data (409 `archive_ledger_invalid`). The imported mall is standalone: for the
/// archive of a mall in an alliance, `alliance` says what stays with the alliance.
/// Audited (`tenant.import`).
#[utoipa::path(post, path = "/v1/platform/tenants/import", tag = "platform", security(("platform_jwt" = [])),
    params(ImportQuery),
    request_body(content = Vec<u8>, content_type = "application/gzip", description = "the archive"),
    responses((status = 201, body = Imported), BadRequest, Unauthorized, Conflict, TooLarge, Invalid))]
async fn import_tenant(
    auth: PlatformAuth,
    Query(q): Query<ImportQuery>,
    body: axum::body::Body,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    use futures::TryStreamExt;
    use tokio::io::AsyncWriteExt;

    if let Some(slug) = &q.slug
        && !directory::slug_is_valid(slug)
    {
        return Err(Error::invalid_field("slug", "2-40 characters: a-z, 0-9 and -, starting with a letter").into());
    }
    let path = std::env::temp_dir().join(format!("pointsmall-upload-{}.tar.gz", uuid::Uuid::new_v4()));
    let received = async {
        let mut file = tokio::fs::File::create(&path).await.map_err(|e| Error::Internal(e.into()))?;
        let mut stream = body.into_data_stream();
        let mut size = 0usize;
        loop {
            let chunk = match stream.try_next().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                // Over the bound: the body-limit layer answers JSON `body_too_large`.
                Err(e) if is_length_limit(&e) => return Ok(Some(StatusCode::PAYLOAD_TOO_LARGE.into_response())),
                Err(e) => return Err(Error::bad_request("archive_invalid", format!("the upload broke off: {e}"))),
            };
            size += chunk.len();
            file.write_all(&chunk).await.map_err(|e| Error::Internal(e.into()))?;
        }
        file.flush().await.map_err(|e| Error::Internal(e.into()))?;
        if size == 0 {
            return Err(Error::bad_request("archive_invalid", "the body is empty: send the archive as the body"));
        }
        Ok::<_, Error>(None)
    }
    .await;
    match received {
        Ok(None) => {}
        Ok(Some(refused)) => {
            let _ = tokio::fs::remove_file(&path).await;
            return Ok(refused);
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&path).await;
            return Err(e.into());
        }
    }
    // Run to its end even when the client goes away or the request times out: an import
    // cut in the middle would leave its stored files behind.
    let (db, storage, actor, file) = (auth.state.db.clone(), auth.state.storage.clone(), auth.actor(), path.clone());
    let imported = tokio::spawn(async move {
        let r = tenant_archive::import(&db, &storage, &file, q.slug.as_deref(), &actor, &|_| {}).await;
        let _ = tokio::fs::remove_file(&file).await;
        r
    })
    .await
    .map_err(|e| Error::Internal(e.into()))??;
    auth.state.directory.evict(&imported.tenant.slug).await;
    Ok((StatusCode::CREATED, Json(imported)).into_response())
}

/// Whether a body error is the body-limit layer's bound.
fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// What deleting a mall asks for.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct DeleteTenant {
    /// The mall's slug, typed again.
    #[schema(min_length = 1, max_length = 63)]
    confirm: String,
}

/// Deletes a mall for good: `confirm` must be its slug again (422 on `confirm`
/// otherwise). Refused (409 `alliance_positions_unsettled`) while its alliance holds
/// entries of it no settlement statement took. Drops its schema, its staff and keys and
/// its files; the slug stays as a tombstone no new mall can take. Audited
/// (`tenant.delete`).
#[utoipa::path(delete, path = "/v1/platform/tenants/{tenant}", tag = "platform", security(("platform_jwt" = [])),
    params(("tenant" = String, Path, description = "tenant slug")), request_body = DeleteTenant,
    responses((status = 200, body = Deleted), Unauthorized, NotFound, Conflict, Invalid))]
async fn delete_tenant(
    auth: PlatformAuth,
    Path(slug): Path<String>,
    Json(body): Json<DeleteTenant>,
) -> ApiResult<Json<Deleted>> {
    let d = tenant_archive::delete(&auth.state.db, &auth.state.storage, &slug, &body.confirm, &auth.actor()).await?;
    auth.state.directory.evict(&slug).await;
    Ok(Json(d))
}

/// The slugs of deleted malls (no new mall can take them), newest first: when and by
/// whom each was deleted.
#[utoipa::path(get, path = "/v1/platform/tombstones", tag = "platform", security(("platform_jwt" = [])),
    responses((status = 200, body = Vec<Tombstone>), Unauthorized))]
async fn tombstones(auth: PlatformAuth) -> ApiResult<Json<Vec<Tombstone>>> {
    Ok(Json(tenant_archive::tombstones(&auth.state.db).await?))
}

/// Suspends a tenant: its APIs answer `tenant_suspended`; data is kept (T2).
#[utoipa::path(post, path = "/v1/platform/tenants/{tenant}/suspend", tag = "platform", security(("platform_jwt" = [])),
    params(("tenant" = String, Path, description = "tenant slug")), responses((status = 200, body = Tenant), NotFound))]
async fn suspend_tenant(auth: PlatformAuth, Path(slug): Path<String>) -> ApiResult<Json<Tenant>> {
    let t = tenancy::set_status(&auth.state.db, &slug, TenantStatus::Suspended, &auth.actor()).await?;
    auth.state.directory.evict(&slug).await;
    Ok(Json(t))
}

/// Resumes a suspended tenant.
#[utoipa::path(post, path = "/v1/platform/tenants/{tenant}/resume", tag = "platform", security(("platform_jwt" = [])),
    params(("tenant" = String, Path, description = "tenant slug")), responses((status = 200, body = Tenant), NotFound))]
async fn resume_tenant(auth: PlatformAuth, Path(slug): Path<String>) -> ApiResult<Json<Tenant>> {
    let t = tenancy::set_status(&auth.state.db, &slug, TenantStatus::Active, &auth.actor()).await?;
    auth.state.directory.evict(&slug).await;
    Ok(Json(t))
}

/// Sets a tenant's concurrency limits on the rules engine, per server instance: event
/// batches at once and rule evaluations at once (see the README's limits). Answers the
/// tenant's settings.
#[utoipa::path(put, path = "/v1/platform/tenants/{tenant}/limits", tag = "platform", security(("platform_jwt" = [])),
    params(("tenant" = String, Path, description = "tenant slug")), request_body = TenantLimits,
    responses((status = 200, body = TenantSettings), NotFound, Invalid))]
async fn set_tenant_limits(
    auth: PlatformAuth,
    Path(slug): Path<String>,
    Json(body): Json<TenantLimits>,
) -> ApiResult<Json<TenantSettings>> {
    let t = tenant_by_slug(&auth.state, &slug).await?;
    let settings = tenancy::set_limits(auth.state.db.control(), &t, body, &auth.actor()).await?;
    auth.state.directory.evict(&slug).await;
    Ok(Json(settings))
}

/// Creates a staff account in a tenant (typically its first owner).
#[utoipa::path(post, path = "/v1/platform/tenants/{tenant}/staff", tag = "platform", security(("platform_jwt" = [])),
    params(("tenant" = String, Path, description = "tenant slug")), request_body = NewStaff,
    responses((status = 201, body = StaffUser), NotFound, Conflict))]
async fn create_tenant_staff(
    auth: PlatformAuth,
    Path(slug): Path<String>,
    Json(body): Json<NewStaff>,
) -> ApiResult<(StatusCode, Json<StaffUser>)> {
    let t = tenant_by_slug(&auth.state, &slug).await?;
    let actor = auth.actor();
    let user =
        auth.state.db.control_write(async |tx| staff::create(tx, Scope::Tenant(t.id), &body, &actor).await).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// Every alliance.
#[utoipa::path(get, path = "/v1/platform/alliances", tag = "platform", security(("platform_jwt" = [])),
    responses((status = 200, body = Vec<Alliance>)))]
async fn list_alliances(auth: PlatformAuth) -> ApiResult<Json<Vec<Alliance>>> {
    Ok(Json(tenancy::list_alliances(auth.state.db.control()).await?))
}

/// Creates an alliance (SPEC A1); merchants join it when they are created.
#[utoipa::path(post, path = "/v1/platform/alliances", tag = "platform", security(("platform_jwt" = [])),
    request_body = NewAlliance, responses((status = 201, body = Alliance), Conflict, Invalid))]
async fn create_alliance(auth: PlatformAuth, Json(body): Json<NewAlliance>) -> ApiResult<(StatusCode, Json<Alliance>)> {
    let a = tenancy::create_alliance(auth.state.db.control(), &body, &auth.actor()).await?;
    Ok((StatusCode::CREATED, Json(a)))
}

/// Creates an admin of an alliance (its first one, typically; role `alliance_admin`).
#[utoipa::path(post, path = "/v1/platform/alliances/{alliance}/admins", tag = "platform",
    security(("platform_jwt" = [])), params(("alliance" = String, Path, description = "alliance slug")),
    request_body = NewAllianceAdmin, responses((status = 201, body = StaffUser), NotFound, Conflict, Invalid))]
async fn create_alliance_admin(
    auth: PlatformAuth,
    Path(slug): Path<String>,
    Json(body): Json<NewAllianceAdmin>,
) -> ApiResult<(StatusCode, Json<StaffUser>)> {
    let a = tenancy::find_alliance(auth.state.db.control(), &slug).await?;
    let (actor, new) = (auth.actor(), body.staff());
    let user =
        auth.state.db.control_write(async |tx| staff::create(tx, Scope::Alliance(a.id), &new, &actor).await).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct JoinAlliance {
    /// Slug of the alliance to join.
    alliance: String,
}

/// An existing mall joins an alliance: the shared currency appears in it and its members
/// get alliance identities on first need.
#[utoipa::path(post, path = "/v1/platform/tenants/{tenant}/alliance", tag = "platform", security(("platform_jwt" = [])),
    params(("tenant" = String, Path, description = "tenant slug")), request_body = JoinAlliance,
    responses((status = 200, body = platform::directory::Tenant), NotFound, Conflict, Invalid))]
async fn join_alliance(
    auth: PlatformAuth,
    Path(slug): Path<String>,
    Json(body): Json<JoinAlliance>,
) -> ApiResult<Json<platform::directory::Tenant>> {
    let t = tenancy::join_alliance(&auth.state.db, &slug, &body.alliance, &auth.actor()).await?;
    auth.state.directory.evict(&slug).await;
    Ok(Json(t))
}

/// A mall leaves its alliance (the operator): its shared products are delisted, its
/// issuing budget is closed, its members keep their shared balance in the other malls.
#[utoipa::path(delete, path = "/v1/platform/tenants/{tenant}/alliance", tag = "platform",
    security(("platform_jwt" = [])), params(("tenant" = String, Path, description = "tenant slug")),
    responses((status = 200, body = platform::alliance::membership::Departure), Unauthorized, NotFound))]
async fn leave_alliance(
    auth: PlatformAuth,
    Path(slug): Path<String>,
) -> ApiResult<Json<platform::alliance::membership::Departure>> {
    let t = tenant_by_slug(&auth.state, &slug).await?;
    let id = t.alliance_id.ok_or_else(|| Error::not_found("not_in_alliance", "this mall is in no alliance"))?;
    let a = tenancy::list_alliances(auth.state.db.control())
        .await?
        .into_iter()
        .find(|a| a.id == id)
        .ok_or_else(|| Error::not_found("alliance_not_found", "no such alliance"))?;
    let d = platform::alliance::membership::leave(&auth.state.db, &a, &t, &auth.actor()).await?;
    auth.state.directory.evict(&slug).await;
    Ok(Json(d))
}

/// A tenant of the directory by slug, whatever its status (the operator manages
/// suspended malls too); 404 when there is none.
async fn tenant_by_slug(state: &AppState, slug: &str) -> Result<platform::directory::Tenant, Error> {
    directory::find_by_slug(state.db.control(), slug)
        .await?
        .ok_or_else(|| Error::not_found("tenant_not_found", "no such mall"))
}
