//! Staff side of the mall: products, categories, code pools, stock alerts, orders
//! (review, ship, cancel, refund), CSV export and shipping import, the payment secret.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use platform::mall::catalog::{self, Category, Product, ProductInput, StockAlert};
use platform::mall::order_csv::{self, ImportProblem, ImportReport};
use platform::mall::order_state::Action;
use platform::mall::orders::{self, Details, Order, OrderFilter};
use platform::mall::payments;
use platform::rbac::Permission;
use platform::{Error, audit};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Json, Path, Query, StaffAuth};
use crate::pagination::{Page, PageQuery};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_products, create_product))
        .routes(routes!(get_product, update_product))
        .routes(routes!(add_codes))
        .routes(routes!(list_categories, create_category))
        .routes(routes!(stock_alerts))
        .routes(routes!(list_orders))
        .routes(routes!(export_orders))
        .routes(routes!(import_shipping))
        .routes(routes!(get_order))
        .routes(routes!(order_action))
        .routes(routes!(payment_secret))
}

/// Every product, newest first. Needs `catalog_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/products", tag = "mall",
    security(("staff_jwt" = [])), params(("tenant" = String, Path, description = "tenant slug"), PageQuery),
    responses((status = 200, body = Page<Product>), (status = 403, body = ErrorBody)))]
async fn list_products(
    State(state): State<AppState>,
    auth: StaffAuth,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<Product>>> {
    auth.require(Permission::CatalogRead)?;
    let (before, limit) = page.bounds()?;
    let mut tx = state.db.tenant_tx(&auth.tenant.cluster, &auth.tenant.schema_name).await?;
    let items = catalog::list(&mut tx, before, limit).await?;
    tx.commit().await.map_err(Error::from)?;
    Ok(Json(Page::new(items, limit, |p| p.id)))
}

/// Creates a product (delisted and pending review until staff say otherwise). Needs
/// `catalog_write`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/products", tag = "mall",
    security(("staff_jwt" = [])), params(("tenant" = String, Path, description = "tenant slug")),
    request_body = ProductInput,
    responses((status = 201, body = Product), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_product(
    State(state): State<AppState>,
    auth: StaffAuth,
    Json(body): Json<ProductInput>,
) -> ApiResult<(StatusCode, Json<Product>)> {
    auth.require(Permission::CatalogWrite)?;
    let mut tx = state.db.tenant_tx(&auth.tenant.cluster, &auth.tenant.schema_name).await?;
    let p = catalog::create(&mut tx, auth.tenant.id, &body).await?;
    audit::record(
        &mut tx,
        &auth.actor(),
        Some(auth.tenant.id),
        "product.create",
        &p.id.to_string(),
        serde_json::json!({"name": p.name}),
    )
    .await?;
    tx.commit().await.map_err(Error::from)?;
    state.catalog.evict(auth.tenant.id);
    Ok((StatusCode::CREATED, Json(p)))
}

/// One product. Needs `catalog_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/products/{id}", tag = "mall",
    security(("staff_jwt" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("id" = i64, Path, description = "product id")),
    responses((status = 200, body = Product), (status = 404, body = ErrorBody)))]
async fn get_product(
    State(state): State<AppState>,
    auth: StaffAuth,
    Path((_t, id)): Path<(String, i64)>,
) -> ApiResult<Json<Product>> {
    auth.require(Permission::CatalogRead)?;
    let mut tx = state.db.tenant_tx(&auth.tenant.cluster, &auth.tenant.schema_name).await?;
    let p = catalog::get(&mut tx, id).await?;
    tx.commit().await.map_err(Error::from)?;
    Ok(Json(p))
}

/// Changes any fields of a product: list/delist, approve, prices, stock (reset), window,
/// limits. Needs `catalog_write`.
#[utoipa::path(patch, path = "/v1/tenants/{tenant}/staff/products/{id}", tag = "mall",
    security(("staff_jwt" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("id" = i64, Path, description = "product id")),
    request_body = ProductInput,
    responses((status = 200, body = Product), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_product(
    State(state): State<AppState>,
    auth: StaffAuth,
    Path((_t, id)): Path<(String, i64)>,
    Json(body): Json<ProductInput>,
) -> ApiResult<Json<Product>> {
    auth.require(Permission::CatalogWrite)?;
    let mut tx = state.db.tenant_tx(&auth.tenant.cluster, &auth.tenant.schema_name).await?;
    let p = catalog::update(&mut tx, auth.tenant.id, id, &body).await?;
    audit::record(
        &mut tx,
        &auth.actor(),
        Some(auth.tenant.id),
        "product.update",
        &id.to_string(),
        serde_json::json!({"status": p.status, "stock": p.stock, "points_price": p.points_price}),
    )
    .await?;
    tx.commit().await.map_err(Error::from)?;
    state.catalog.evict(auth.tenant.id);
    Ok(Json(p))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Codes {
    codes: Vec<String>,
}

/// Adds codes to a virtual product's pool (its stock grows by the new codes). Needs
/// `catalog_write`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/products/{id}/codes", tag = "mall",
    security(("staff_jwt" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("id" = i64, Path, description = "product id")),
    request_body = Codes,
    responses((status = 200, body = Product), (status = 422, body = ErrorBody)))]
async fn add_codes(
    State(state): State<AppState>,
    auth: StaffAuth,
    Path((_t, id)): Path<(String, i64)>,
    Json(body): Json<Codes>,
) -> ApiResult<Json<Product>> {
    auth.require(Permission::CatalogWrite)?;
    let mut tx = state.db.tenant_tx(&auth.tenant.cluster, &auth.tenant.schema_name).await?;
    let p = catalog::add_codes(&mut tx, auth.tenant.id, id, &body.codes).await?;
    audit::record(
        &mut tx,
        &auth.actor(),
        Some(auth.tenant.id),
        "product.codes",
        &id.to_string(),
        serde_json::json!({"count": body.codes.len()}),
    )
    .await?;
    tx.commit().await.map_err(Error::from)?;
    state.catalog.evict(auth.tenant.id);
    Ok(Json(p))
}

/// The mall's categories. Needs `catalog_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/categories", tag = "mall",
    security(("staff_jwt" = [])), params(("tenant" = String, Path, description = "tenant slug")),
    responses((status = 200, body = Vec<Category>)))]
async fn list_categories(State(state): State<AppState>, auth: StaffAuth) -> ApiResult<Json<Vec<Category>>> {
    auth.require(Permission::CatalogRead)?;
    let mut tx = state.db.tenant_tx(&auth.tenant.cluster, &auth.tenant.schema_name).await?;
    let c = catalog::categories(&mut tx).await?;
    tx.commit().await.map_err(Error::from)?;
    Ok(Json(c))
}

/// Adds a category. Needs `catalog_write`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/categories", tag = "mall",
    security(("staff_jwt" = [])), params(("tenant" = String, Path, description = "tenant slug")),
    request_body = Category,
    responses((status = 201, body = Category), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_category(
    State(state): State<AppState>,
    auth: StaffAuth,
    Json(body): Json<Category>,
) -> ApiResult<(StatusCode, Json<Category>)> {
    auth.require(Permission::CatalogWrite)?;
    let mut tx = state.db.tenant_tx(&auth.tenant.cluster, &auth.tenant.schema_name).await?;
    let c = catalog::create_category(&mut tx, auth.tenant.id, &body).await?;
    audit::record(&mut tx, &auth.actor(), Some(auth.tenant.id), "category.create", &c.name, serde_json::json!({}))
        .await?;
    tx.commit().await.map_err(Error::from)?;
    state.catalog.evict(auth.tenant.id);
    Ok((StatusCode::CREATED, Json(c)))
}

/// Low-stock alerts, newest first (C4). Needs `catalog_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/stock-alerts", tag = "mall",
    security(("staff_jwt" = [])), params(("tenant" = String, Path, description = "tenant slug")),
    responses((status = 200, body = Vec<StockAlert>)))]
async fn stock_alerts(State(state): State<AppState>, auth: StaffAuth) -> ApiResult<Json<Vec<StockAlert>>> {
    auth.require(Permission::CatalogRead)?;
    let mut tx = state.db.tenant_tx(&auth.tenant.cluster, &auth.tenant.schema_name).await?;
    let a = catalog::stock_alerts(&mut tx, 200).await?;
    tx.commit().await.map_err(Error::from)?;
    Ok(Json(a))
}

/// Orders, newest first, filtered. Needs `orders_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/orders", tag = "mall",
    security(("staff_jwt" = [])), params(("tenant" = String, Path, description = "tenant slug"), OrderFilter, PageQuery),
    responses((status = 200, body = Page<Order>), (status = 422, body = ErrorBody)))]
async fn list_orders(
    State(state): State<AppState>,
    auth: StaffAuth,
    Query(f): Query<OrderFilter>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<Order>>> {
    auth.require(Permission::OrdersRead)?;
    let (before, limit) = page.bounds()?;
    let mut tx = state.db.tenant_tx(&auth.tenant.cluster, &auth.tenant.schema_name).await?;
    let items = orders::list(&mut tx, &f, before, limit).await?;
    tx.commit().await.map_err(Error::from)?;
    Ok(Json(Page::new(items, limit, |o| o.id)))
}

/// Orders matching the filter as CSV (at most 50,000 rows). Needs `orders_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/orders/export", tag = "mall",
    security(("staff_jwt" = [])), params(("tenant" = String, Path, description = "tenant slug"), OrderFilter),
    responses((status = 200, content_type = "text/csv"), (status = 422, body = ErrorBody)))]
async fn export_orders(
    State(state): State<AppState>,
    auth: StaffAuth,
    Query(f): Query<OrderFilter>,
) -> ApiResult<Response> {
    auth.require(Permission::OrdersRead)?;
    let mut tx = state.db.tenant_tx(&auth.tenant.cluster, &auth.tenant.schema_name).await?;
    let csv = orders::export_csv(&mut tx, &f, 50_000).await?;
    tx.commit().await.map_err(Error::from)?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"orders.csv\""),
        ],
        csv,
    )
        .into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ShippingImport {
    /// CSV text: `order_no,carrier,tracking_no` per line (a header line is allowed).
    csv: String,
}

/// Ships many orders from a CSV (O7): each line is applied on its own; lines that
/// cannot be applied are reported. Needs `orders_write`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/orders/shipping-import", tag = "mall",
    security(("staff_jwt" = [])), params(("tenant" = String, Path, description = "tenant slug")),
    request_body = ShippingImport,
    responses((status = 200, body = ImportReport), (status = 422, body = ErrorBody)))]
async fn import_shipping(
    State(state): State<AppState>,
    auth: StaffAuth,
    Json(body): Json<ShippingImport>,
) -> ApiResult<Json<ImportReport>> {
    auth.require(Permission::OrdersWrite)?;
    let (lines, unreadable) = order_csv::parse_shipping(&body.csv)?;
    let mut report = ImportReport { shipped: 0, problems: unreadable };
    for order_csv::ShippingLine { line, order_no, carrier, tracking_no } in lines {
        let mut tx = state.db.tenant_tx(&auth.tenant.cluster, &auth.tenant.schema_name).await?;
        let details = Details {
            carrier: Some(carrier),
            tracking_no: Some(tracking_no),
            note: "shipping import".into(),
            ..Details::default()
        };
        let result = match orders::by_no(&mut tx, &order_no).await {
            Ok(o) => orders::transition(&mut tx, o.id, Action::Ship, &auth.actor().label, &details, Utc::now()).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(_) => {
                tx.commit().await.map_err(Error::from)?;
                report.shipped += 1;
            }
            Err(e @ (Error::Database(_) | Error::Internal(_))) => return Err(e.into()),
            Err(e) => report.problems.push(ImportProblem { line, message: format!("{order_no}: {e}") }),
        }
    }
    report.problems.sort_by_key(|p| p.line);
    let mut conn = state.db.control().acquire().await.map_err(Error::from)?;
    audit::record(
        &mut conn,
        &auth.actor(),
        Some(auth.tenant.id),
        "orders.shipping_import",
        "",
        serde_json::json!({"shipped": report.shipped, "problems": report.problems.len()}),
    )
    .await?;
    Ok(Json(report))
}

/// One order. Needs `orders_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/orders/{id}", tag = "mall",
    security(("staff_jwt" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("id" = i64, Path, description = "order id")),
    responses((status = 200, body = Order), (status = 404, body = ErrorBody)))]
async fn get_order(
    State(state): State<AppState>,
    auth: StaffAuth,
    Path((_t, id)): Path<(String, i64)>,
) -> ApiResult<Json<Order>> {
    auth.require(Permission::OrdersRead)?;
    let mut tx = state.db.tenant_tx(&auth.tenant.cluster, &auth.tenant.schema_name).await?;
    let o = orders::get(&mut tx, id).await?;
    tx.commit().await.map_err(Error::from)?;
    Ok(Json(o))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    #[serde(default)]
    carrier: Option<String>,
    #[serde(default)]
    tracking_no: Option<String>,
    #[serde(default)]
    note: Option<String>,
}

/// Moves an order: `approve` (pending review), `ship` (needs carrier and tracking_no),
/// `cancel` (before shipment) or `refund` (after-sales). Illegal moves are a 409.
/// Needs `orders_write`; audited.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/orders/{id}/{action}", tag = "mall",
    security(("staff_jwt" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("id" = i64, Path, description = "order id"),
        ("action" = String, Path, description = "approve, ship, cancel or refund")),
    request_body = ActionBody,
    responses((status = 200, body = Order), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn order_action(
    State(state): State<AppState>,
    auth: StaffAuth,
    Path((_t, id, action)): Path<(String, i64, String)>,
    raw: axum::body::Bytes,
) -> ApiResult<Json<Order>> {
    auth.require(Permission::OrdersWrite)?;
    // The body is optional (cancel and refund need none).
    let body: ActionBody =
        if raw.iter().all(u8::is_ascii_whitespace) { ActionBody::default() } else { crate::input::parse_bytes(&raw)? };
    let action = match action.as_str() {
        "approve" => Action::Approve,
        "ship" => Action::Ship,
        "cancel" => Action::Cancel,
        "refund" => Action::Refund,
        _ => return Err(Error::not_found("not_found", "actions: approve, ship, cancel, refund").into()),
    };
    if action == Action::Ship {
        let ok = |s: &Option<String>| s.as_ref().is_some_and(|v| !v.trim().is_empty() && v.len() <= 100);
        platform::error::Validator::new()
            .check(ok(&body.carrier), "carrier", "required, at most 100 characters")
            .check(ok(&body.tracking_no), "tracking_no", "required, at most 100 characters")
            .finish()?;
    }
    let details = Details {
        carrier: body.carrier,
        tracking_no: body.tracking_no,
        payment_ref: None,
        note: body.note.unwrap_or_default().chars().take(200).collect(),
    };
    let mut tx = state.db.tenant_tx(&auth.tenant.cluster, &auth.tenant.schema_name).await?;
    let o = orders::transition(&mut tx, id, action, &auth.actor().label, &details, Utc::now()).await?;
    audit::record(
        &mut tx,
        &auth.actor(),
        Some(auth.tenant.id),
        &format!("order.{}", action.as_str()),
        &o.order_no,
        serde_json::json!({"status": o.status}),
    )
    .await?;
    tx.commit().await.map_err(Error::from)?;
    Ok(Json(o))
}

#[derive(Serialize, utoipa::ToSchema)]
struct Secret {
    /// HMAC-SHA256 key of the payment callback; shown once.
    secret: String,
}

/// Creates (or replaces) the secret the merchant's checkout signs payment callbacks
/// with. Needs `settings_write` (owner); audited.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/payment-secret", tag = "mall",
    security(("staff_jwt" = [])), params(("tenant" = String, Path, description = "tenant slug")),
    responses((status = 201, body = Secret), (status = 403, body = ErrorBody)))]
async fn payment_secret(State(state): State<AppState>, auth: StaffAuth) -> ApiResult<(StatusCode, Json<Secret>)> {
    auth.require(Permission::SettingsWrite)?;
    let mut tx = state.db.tenant_tx(&auth.tenant.cluster, &auth.tenant.schema_name).await?;
    let secret = payments::rotate_secret(&mut tx, &state.vault, auth.tenant.id).await?;
    audit::record(&mut tx, &auth.actor(), Some(auth.tenant.id), "payment_secret.rotate", "", serde_json::json!({}))
        .await?;
    tx.commit().await.map_err(Error::from)?;
    Ok((StatusCode::CREATED, Json(Secret { secret })))
}
