//! Product images (SPEC C5): staff upload (type and size checked), anyone reads. Files
//! live in the configured object storage (S3-compatible or a local directory).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use platform::Error;
use platform::ids::ProductId;
use platform::images;
use platform::mall::catalog::{self, Product};
use platform::rbac::Permission;
use platform::storage::MAX_FILE_BYTES;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::doc::{Invalid, NotFound, TenantSlug, TooLarge};
use crate::error::ApiResult;
use crate::extract::{Json, Path, PathId, StaffAuth, TenantPath};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(upload_image)).routes(routes!(get_file))
}

/// Uploads an image of a product (PNG, JPEG, GIF or WebP, at most 2 MiB and 4096
/// pixels a side; the type is read from the file itself, which must decode) and appends
/// it to the product's images. Send the file as the raw body. Needs `catalog_write`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/products/{id}/images", tag = "mall",
    security(("staff_jwt" = [])), params(TenantSlug, ("id" = i64, Path, description = "product id")),
    request_body(content = Vec<u8>, content_type = "image/png"),
    responses((status = 201, body = Product), TooLarge, Invalid))]
async fn upload_image(auth: StaffAuth, PathId(id): PathId<ProductId>, body: Bytes) -> ApiResult<Response> {
    auth.require(Permission::CatalogWrite)?;
    let image = checked_image(&body).await?;
    let storage = &auth.state.storage;
    let p = auth
        .state
        .db
        .write(&auth.tenant, &auth.actor(), async |tx| catalog::add_image(tx, storage, id, body, &image).await)
        .await?;
    auth.state.catalog.evict(auth.tenant.id);
    Ok((StatusCode::CREATED, Json(p)).into_response())
}

/// A product image. No credential needed.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/files/products/{id}/{name}", tag = "mall",
    params(("tenant" = String, Path, description = "tenant slug"), ("id" = i64, Path, description = "product id"),
        ("name" = String, Path, description = "file name")),
    responses((status = 200, content_type = "image/png"), NotFound))]
async fn get_file(
    State(state): State<AppState>,
    TenantPath(tenant): TenantPath,
    Path((_t, id, name)): Path<(String, i64, String)>,
) -> ApiResult<Response> {
    serve_image(&state, tenant.id, "products", id, &name).await
}

/// An uploaded image's checks: at most 2 MiB, and decoded in full (off the async
/// runtime), not only sniffed.
pub(crate) async fn checked_image(body: &Bytes) -> ApiResult<images::CheckedImage> {
    if body.len() > MAX_FILE_BYTES {
        return Err(Error::invalid_field("file", "at most 2 MiB").into());
    }
    let bytes = body.clone();
    Ok(tokio::task::spawn_blocking(move || images::check(&bytes)).await.map_err(|e| Error::Internal(e.into()))??)
}

/// Serves a stored image `t<tenant>/<folder>/<id>/<name>` to anyone, cached for a day
/// (names are random and never reused). Only names this server gives files
/// (`<32 hex>.<png|jpg|gif|webp>`) are looked up.
pub(crate) async fn serve_image(
    state: &AppState,
    tenant: platform::ids::TenantId,
    folder: &str,
    id: i64,
    name: &str,
) -> ApiResult<Response> {
    if !stored_name_ok(name) {
        return Err(Error::not_found("file_not_found", "no such file").into());
    }
    let key = format!("t{tenant}/{folder}/{id}/{name}");
    let (bytes, content_type) =
        state.storage.get(&key).await?.ok_or_else(|| Error::not_found("file_not_found", "no such file"))?;
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=86400, immutable".to_string()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
        ],
        bytes,
    )
        .into_response())
}

/// A file name `upload_image` gives: 32 hex digits and an image extension.
fn stored_name_ok(name: &str) -> bool {
    name.split_once('.').is_some_and(|(stem, ext)| {
        stem.len() == 32 && stem.bytes().all(|b| b.is_ascii_hexdigit()) && ["png", "jpg", "gif", "webp"].contains(&ext)
    })
}
