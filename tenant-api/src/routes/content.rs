//! Content (SPEC K5): staff write banners, announcements, themed zones and rule pages
//! (`content_read`, `content_write`) and a reviewer publishes them (`content_publish`);
//! members read what is published, in their language, from a short-lived cache that
//! staff changes evict on every instance. No credential is needed to read, like the
//! catalog.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use platform::Error;
use platform::audit::Actor;
use platform::content::published::{
    self, Langs, MemberAnnouncement, MemberBanner, MemberPage, MemberPageLink, MemberZone,
};
use platform::content::{
    self, ContentFilter, ContentInput, ContentItem, ContentLocale, ContentTransition, MarkdownPreview, RenderedHtml,
};
use platform::directory::Tenant;
use platform::i18n::{Lang, RequestLang};
use platform::rbac::Permission;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;

use crate::doc::{Conflict, Forbidden, Invalid, NotFound, TenantSlug, TooLarge};
use crate::error::ApiResult;
use crate::extract::{Json, Path, PathId, Query, StaffAuth, TenantPath};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    paths![
        list_content, create_content;
        get_content, update_content;
        move_content;
        upload_content_image;
        preview_markdown;
        content_file;
        banners;
        announcements;
        zones;
        zone;
        pages;
        page;
    ]
}

/// The mall's content items, newest first (at most 1000; archived ones only with
/// `state=archived`). Needs `content_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/content", tag = "staff", security(("staff_jwt" = [])),
    params(TenantSlug, ContentFilter), responses((status = 200, body = Vec<ContentItem>), Forbidden))]
async fn list_content(auth: StaffAuth, Query(f): Query<ContentFilter>) -> ApiResult<Json<Vec<ContentItem>>> {
    Ok(Json(auth.read(Permission::ContentRead, async |tx| content::list(tx, &f).await).await?))
}

/// Writes a draft: a banner, an announcement, a zone or a rule page in one language.
/// Refused with a code of its own: a window that ends before it starts
/// (`content_window_invalid`), a link that is not http(s) or a path of the mall
/// (`content_link_unsafe`), a product the mall does not have
/// (`content_product_unknown`); a key already used by a live item of the same kind and
/// language (409 `content_key_taken`); more than 1000 items that are not archived (409).
/// Needs `content_write`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/content", tag = "staff", security(("staff_jwt" = [])),
    params(TenantSlug), request_body = ContentInput,
    responses((status = 201, body = ContentItem), Forbidden, Conflict, Invalid))]
async fn create_content(auth: StaffAuth, Json(body): Json<ContentInput>) -> ApiResult<(StatusCode, Json<ContentItem>)> {
    let item = auth.write(Permission::ContentWrite, async |tx| content::create(tx, &body).await).await?;
    auth.state.content.evict(auth.tenant.id);
    Ok((StatusCode::CREATED, Json(item)))
}

/// One content item. Needs `content_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/content/{id}", tag = "staff", security(("staff_jwt" = [])),
    params(TenantSlug, ("id" = i64, Path, description = "content item id")),
    responses((status = 200, body = ContentItem), Forbidden, NotFound))]
async fn get_content(auth: StaffAuth, PathId(id): PathId<i64>) -> ApiResult<Json<ContentItem>> {
    Ok(Json(auth.read(Permission::ContentRead, async |tx| content::get(tx, id).await).await?))
}

/// Replaces an item's fields (its kind stays). A submitted or published item becomes a
/// draft again: members stop seeing it until a reviewer approves the change. Archived
/// items are refused (409). Needs `content_write`.
#[utoipa::path(put, path = "/v1/tenants/{tenant}/staff/content/{id}", tag = "staff", security(("staff_jwt" = [])),
    params(TenantSlug, ("id" = i64, Path, description = "content item id")), request_body = ContentInput,
    responses((status = 200, body = ContentItem), Forbidden, NotFound, Conflict, Invalid))]
async fn update_content(
    auth: StaffAuth,
    PathId(id): PathId<i64>,
    Json(body): Json<ContentInput>,
) -> ApiResult<Json<ContentItem>> {
    let item = auth.write(Permission::ContentWrite, async |tx| content::update(tx, id, &body).await).await?;
    auth.state.content.evict(auth.tenant.id);
    Ok(Json(item))
}

/// Moves an item's review: submit (`pending_review`, `content_write`; a banner needs an
/// image, a zone a product, a page a text: 409 `content_incomplete`), publish a
/// submitted item (`published`, `content_publish`), send back or withdraw (`draft`),
/// archive (`archived`, `content_write`). Other moves: 409 `content_state_invalid`.
/// Needs `content_write` or `content_publish`, as each move says.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/content/{id}/state", tag = "staff",
    security(("staff_jwt" = [])), params(TenantSlug, ("id" = i64, Path, description = "content item id")),
    request_body = ContentTransition,
    responses((status = 200, body = ContentItem), Forbidden, NotFound, Conflict, Invalid))]
async fn move_content(
    auth: StaffAuth,
    PathId(id): PathId<i64>,
    Json(body): Json<ContentTransition>,
) -> ApiResult<Json<ContentItem>> {
    if !auth.role.allows(Permission::ContentWrite) {
        auth.require(Permission::ContentPublish)?;
    }
    let role = auth.role;
    let item = auth
        .state
        .db
        .write(&auth.tenant, &auth.actor(), async |tx| content::transition(tx, id, &body, role).await)
        .await?;
    auth.state.content.evict(auth.tenant.id);
    Ok(Json(item))
}

/// Uploads the image of a banner or a zone (PNG, JPEG, GIF or WebP, at most 2 MiB and
/// 4096 pixels a side; the file must decode) and makes it the item's image; the item
/// becomes a draft again. Send the file as the raw body. Needs `content_write`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/content/{id}/image", tag = "staff",
    security(("staff_jwt" = [])), params(TenantSlug, ("id" = i64, Path, description = "content item id")),
    request_body(content = Vec<u8>, content_type = "image/png"),
    responses((status = 200, body = ContentItem), Forbidden, NotFound, Conflict, TooLarge, Invalid))]
async fn upload_content_image(auth: StaffAuth, PathId(id): PathId<i64>, body: Bytes) -> ApiResult<Json<ContentItem>> {
    auth.require(Permission::ContentWrite)?;
    let image = super::files::checked_image(&body).await?;
    let storage = &auth.state.storage;
    let item = auth
        .state
        .db
        .write(&auth.tenant, &auth.actor(), async |tx| content::set_image(tx, storage, id, body, &image).await)
        .await?;
    auth.state.content.evict(auth.tenant.id);
    Ok(Json(item))
}

/// Renders Markdown as members would see a rule page (sanitised HTML). Needs
/// `content_write`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/content/preview", tag = "staff", security(("staff_jwt" = [])),
    params(TenantSlug), request_body = MarkdownPreview,
    responses((status = 200, body = RenderedHtml), Forbidden, Invalid))]
async fn preview_markdown(auth: StaffAuth, Json(body): Json<MarkdownPreview>) -> ApiResult<Json<RenderedHtml>> {
    auth.require(Permission::ContentWrite)?;
    Ok(Json(content::preview(&body)?))
}

/// An image of a banner or a zone. No credential needed.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/files/content/{id}/{name}", tag = "mall",
    params(("tenant" = String, Path, description = "tenant slug"), ("id" = i64, Path, description = "content item id"),
        ("name" = String, Path, description = "file name")),
    responses((status = 200, content_type = "image/png"), NotFound))]
async fn content_file(
    State(state): State<AppState>,
    TenantPath(tenant): TenantPath,
    Path((_t, id, name)): Path<(String, i64, String)>,
) -> ApiResult<Response> {
    super::files::serve_image(&state, tenant.id, "content", id, &name).await
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
struct LangParams {
    /// The member's language (default: `Accept-Language`, else the mall's). Items not
    /// written in it are shown in the mall's language.
    locale: Option<ContentLocale>,
}

impl LangParams {
    fn langs(&self, tenant: &Tenant) -> Langs {
        Langs {
            want: self.locale.unwrap_or_else(|| ContentLocale::of(RequestLang::current())),
            mall: ContentLocale::of(Lang::of_locale(&tenant.settings.locale)),
        }
    }
}

/// A cached, already serialized JSON answer.
fn json_bytes(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Answers from the content cache, or reads, keeps and answers.
async fn cached<T: serde::Serialize>(
    state: &AppState,
    tenant: &Tenant,
    what: &str,
    langs: Langs,
    read: impl AsyncFnOnce(&mut platform::tx::TenantTx) -> platform::error::Result<T>,
) -> ApiResult<Response> {
    let key = format!("{what}|{}|{}", langs.want.as_str(), langs.mall.as_str());
    if let Some(hit) = state.content.get(tenant.id, &key).await {
        return Ok(json_bytes(hit));
    }
    let value = state.db.read(tenant, &Actor::public(), read).await?;
    Ok(json_bytes(state.content.put(tenant.id, &key, &value).await?))
}

/// One published item by its key (`what:key` in the cache): an unknown-looking key is a
/// 404 without a read.
async fn cached_item<T: serde::Serialize>(
    state: &AppState,
    tenant: &Tenant,
    what: &str,
    key: &str,
    p: LangParams,
    read: impl AsyncFnOnce(&mut platform::tx::TenantTx, Langs, &str) -> platform::error::Result<T>,
) -> ApiResult<Response> {
    if !content::key_ok(key) {
        return Err(Error::not_found("content_not_found", "no such content item").into());
    }
    let langs = p.langs(tenant);
    cached(state, tenant, &format!("{what}:{key}"), langs, async |tx| read(tx, langs, key).await).await
}

/// The mall's banners now, in order. No credential needed.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/content/banners", tag = "mall", params(TenantSlug, LangParams),
    responses((status = 200, body = Vec<MemberBanner>), NotFound))]
async fn banners(
    State(state): State<AppState>,
    TenantPath(tenant): TenantPath,
    Query(p): Query<LangParams>,
) -> ApiResult<Response> {
    let langs = p.langs(&tenant);
    cached(&state, &tenant, "banners", langs, async |tx| published::banners(tx, langs, Utc::now()).await).await
}

/// The mall's announcements now, pinned ones first. No credential needed.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/content/announcements", tag = "mall", params(TenantSlug, LangParams),
    responses((status = 200, body = Vec<MemberAnnouncement>), NotFound))]
async fn announcements(
    State(state): State<AppState>,
    TenantPath(tenant): TenantPath,
    Query(p): Query<LangParams>,
) -> ApiResult<Response> {
    let langs = p.langs(&tenant);
    cached(&state, &tenant, "announcements", langs, async |tx| published::announcements(tx, langs, Utc::now()).await)
        .await
}

/// The mall's themed zones now, each with its products on sale, in the zone's order.
/// No credential needed.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/content/zones", tag = "mall", params(TenantSlug, LangParams),
    responses((status = 200, body = Vec<MemberZone>), NotFound))]
async fn zones(
    State(state): State<AppState>,
    TenantPath(tenant): TenantPath,
    Query(p): Query<LangParams>,
) -> ApiResult<Response> {
    let langs = p.langs(&tenant);
    cached(&state, &tenant, "zones", langs, async |tx| published::zones(tx, langs, None, Utc::now()).await).await
}

/// One themed zone by its key, with its products on sale. No credential needed.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/content/zones/{key}", tag = "mall",
    params(TenantSlug, ("key" = String, Path, description = "zone key"), LangParams),
    responses((status = 200, body = MemberZone), NotFound))]
async fn zone(
    State(state): State<AppState>,
    TenantPath(tenant): TenantPath,
    PathId(key): PathId<String>,
    Query(p): Query<LangParams>,
) -> ApiResult<Response> {
    cached_item(&state, &tenant, "zone", &key, p, async |tx, langs, key| {
        published::zone(tx, langs, key, Utc::now()).await
    })
    .await
}

/// The mall's rule pages (keys and titles). No credential needed.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/content/pages", tag = "mall", params(TenantSlug, LangParams),
    responses((status = 200, body = Vec<MemberPageLink>), NotFound))]
async fn pages(
    State(state): State<AppState>,
    TenantPath(tenant): TenantPath,
    Query(p): Query<LangParams>,
) -> ApiResult<Response> {
    let langs = p.langs(&tenant);
    cached(&state, &tenant, "pages", langs, async |tx| published::pages(tx, langs, Utc::now()).await).await
}

/// One rule page by its key ("points-rules"), as sanitised HTML. No credential needed.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/content/pages/{key}", tag = "mall",
    params(TenantSlug, ("key" = String, Path, description = "page key"), LangParams),
    responses((status = 200, body = MemberPage), NotFound))]
async fn page(
    State(state): State<AppState>,
    TenantPath(tenant): TenantPath,
    PathId(key): PathId<String>,
    Query(p): Query<LangParams>,
) -> ApiResult<Response> {
    cached_item(&state, &tenant, "page", &key, p, async |tx, langs, key| {
        published::page(tx, langs, key, Utc::now()).await
    })
    .await
}
