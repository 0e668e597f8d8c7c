//! Staff side of the mall: products, categories, code pools, stock alerts, orders
//! (review, ship, cancel, refund), CSV export and shipping import, the payment secret.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use platform::ids::{OrderId, ProductId};
use platform::mall::catalog::{
    self, Category, NewProduct, Product, ProductCode, ProductInput, SpecialWindow, StockAlert,
};
use platform::mall::order_csv::{self, ImportReport};
use platform::mall::orders::{self, Order, OrderFilter};
use platform::mall::payments;
use platform::mall::staff_orders::{self, ActionBody};
use platform::rbac::Permission;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;

use crate::doc::{Conflict, Forbidden, Invalid, NotFound, TenantSlug};
use crate::error::ApiResult;
use crate::extract::{Json, Path, PathId, Query, StaffAuth};
use crate::pagination::{Page, PageQuery};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    paths![
        list_products, create_product;
        get_product, update_product;
        add_codes;
        list_categories, create_category;
        stock_alerts;
        list_orders;
        export_orders;
        import_shipping;
        get_order;
        order_action;
        payment_secret;
    ]
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
struct ProductFilter {
    /// Only products with a special price window (flash sales): running now, starting
    /// later, or either.
    #[param(inline)]
    special: Option<SpecialWindow>,
}

/// Every product, newest first (or those with a special price window). Needs
/// `catalog_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/products", tag = "mall", security(("staff_jwt" = [])),
    params(TenantSlug, ProductFilter, PageQuery), responses((status = 200, body = Page<Product>), Forbidden))]
async fn list_products(
    auth: StaffAuth,
    Query(filter): Query<ProductFilter>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<Product>>> {
    auth.require(Permission::CatalogRead)?;
    let (before, limit) = page.bounds()?;
    let now = chrono::Utc::now();
    let items = auth
        .state
        .db
        .read(&auth.tenant, &auth.actor(), async |tx| catalog::list(tx, filter.special, now, before, limit).await)
        .await?;
    Ok(Json(Page::new(items, limit, |p| p.id.get())))
}

/// Creates a product (delisted and pending review until staff say otherwise). Needs
/// `catalog_write`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/products", tag = "mall", security(("staff_jwt" = [])),
    params(TenantSlug), request_body = NewProduct, responses((status = 201, body = Product), Forbidden, Invalid))]
async fn create_product(auth: StaffAuth, Json(body): Json<ProductInput>) -> ApiResult<(StatusCode, Json<Product>)> {
    let p = auth.write(Permission::CatalogWrite, async |tx| catalog::create(tx, &body).await).await?;
    auth.state.catalog.evict(auth.tenant.id);
    Ok((StatusCode::CREATED, Json(p)))
}

/// One product. Needs `catalog_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/products/{id}", tag = "mall", security(("staff_jwt" = [])),
    params(TenantSlug, ("id" = i64, Path, description = "product id")),
    responses((status = 200, body = Product), NotFound))]
async fn get_product(auth: StaffAuth, PathId(id): PathId<ProductId>) -> ApiResult<Json<Product>> {
    Ok(Json(auth.read(Permission::CatalogRead, async |tx| catalog::get(tx, id).await).await?))
}

/// Changes any fields of a product: list/delist, approve, prices, stock (reset), window,
/// limits. Needs `catalog_write`.
#[utoipa::path(patch, path = "/v1/tenants/{tenant}/staff/products/{id}", tag = "mall", security(("staff_jwt" = [])),
    params(TenantSlug, ("id" = i64, Path, description = "product id")), request_body = ProductInput,
    responses((status = 200, body = Product), NotFound, Invalid))]
async fn update_product(
    auth: StaffAuth,
    PathId(id): PathId<ProductId>,
    Json(body): Json<ProductInput>,
) -> ApiResult<Json<Product>> {
    let p = auth.write(Permission::CatalogWrite, async |tx| catalog::update(tx, id, &body).await).await?;
    auth.state.catalog.evict(auth.tenant.id);
    Ok(Json(p))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Codes {
    /// 1 to 10,000 codes; codes already in the pool are skipped.
    #[schema(value_type = Vec<ProductCode>, min_items = 1, max_items = 10000)]
    codes: Vec<String>,
}

/// Adds codes to a virtual product's pool (its stock grows by the new codes). Needs
/// `catalog_write`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/products/{id}/codes", tag = "mall",
    security(("staff_jwt" = [])), params(TenantSlug, ("id" = i64, Path, description = "product id")),
    request_body = Codes, responses((status = 200, body = Product), Invalid))]
async fn add_codes(
    auth: StaffAuth,
    PathId(id): PathId<ProductId>,
    Json(body): Json<Codes>,
) -> ApiResult<Json<Product>> {
    let p = auth.write(Permission::CatalogWrite, async |tx| catalog::add_codes(tx, id, &body.codes).await).await?;
    auth.state.catalog.evict(auth.tenant.id);
    Ok(Json(p))
}

/// The mall's categories. Needs `catalog_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/categories", tag = "mall", security(("staff_jwt" = [])),
    params(TenantSlug), responses((status = 200, body = Vec<Category>)))]
async fn list_categories(auth: StaffAuth) -> ApiResult<Json<Vec<Category>>> {
    Ok(Json(auth.read(Permission::CatalogRead, async |tx| catalog::categories(tx).await).await?))
}

/// Adds a category. Needs `catalog_write`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/categories", tag = "mall", security(("staff_jwt" = [])),
    params(TenantSlug), request_body = Category, responses((status = 201, body = Category), Conflict, Invalid))]
async fn create_category(auth: StaffAuth, Json(body): Json<Category>) -> ApiResult<(StatusCode, Json<Category>)> {
    let c = auth.write(Permission::CatalogWrite, async |tx| catalog::create_category(tx, &body).await).await?;
    auth.state.catalog.evict(auth.tenant.id);
    Ok((StatusCode::CREATED, Json(c)))
}

/// Low-stock alerts, newest first (C4). Needs `catalog_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/stock-alerts", tag = "mall", security(("staff_jwt" = [])),
    params(TenantSlug), responses((status = 200, body = Vec<StockAlert>)))]
async fn stock_alerts(auth: StaffAuth) -> ApiResult<Json<Vec<StockAlert>>> {
    Ok(Json(auth.read(Permission::CatalogRead, async |tx| catalog::stock_alerts(tx, 200).await).await?))
}

/// Orders, newest first, filtered. Needs `orders_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/orders", tag = "mall", security(("staff_jwt" = [])),
    params(TenantSlug, OrderFilter, PageQuery), responses((status = 200, body = Page<Order>), Invalid))]
async fn list_orders(
    auth: StaffAuth,
    Query(f): Query<OrderFilter>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<Order>>> {
    auth.require(Permission::OrdersRead)?;
    let (before, limit) = page.bounds()?;
    let items =
        auth.state.db.read(&auth.tenant, &auth.actor(), async |tx| orders::list(tx, &f, before, limit).await).await?;
    Ok(Json(Page::new(items, limit, |o| o.id.get())))
}

/// Orders matching the filter as CSV (at most 50,000 rows). Needs `orders_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/orders/export", tag = "mall", security(("staff_jwt" = [])),
    params(TenantSlug, OrderFilter), responses((status = 200, content_type = "text/csv"), Invalid))]
async fn export_orders(auth: StaffAuth, Query(f): Query<OrderFilter>) -> ApiResult<Response> {
    let csv = auth.read(Permission::OrdersRead, async |tx| order_csv::export_orders(tx, &f, 50_000).await).await?;
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
    #[schema(schema_with = shipping_csv)]
    csv: String,
}

/// The shipping CSV in the OpenAPI document: lines without quotes, at least one of them
/// three fields of 1 to `IMPORT_FIELD_CHARS_MAX` characters (`order_csv::parse_shipping`
/// also reads quoted fields and skips a header line; the document shows the plain form).
fn shipping_csv() -> utoipa::openapi::schema::Object {
    use platform::limits::mall::{IMPORT_FIELD_CHARS_MAX, IMPORT_LINES_MAX};
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    let field = format!("[^\\x00\\s\",][^\\x00\",\\r\\n]{{0,{}}}", IMPORT_FIELD_CHARS_MAX - 1);
    let other = "[^\\x00\"\\r\\n]*";
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(format!("^(?:{other}\\r?\\n)*{field},{field},{field}(?:\\r?\\n{other})*$")))
        .description(Some(format!(
            "CSV text: `order_no,carrier,tracking_no` per line (a header line is allowed; at most \
             {IMPORT_LINES_MAX} lines); at least one line must be usable"
        )))
        .build()
}

/// Ships many orders from a CSV (O7): each line is applied on its own; lines that
/// cannot be applied are reported. Needs `orders_write`.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/orders/shipping-import", tag = "mall",
    security(("staff_jwt" = [])), params(TenantSlug), request_body = ShippingImport,
    responses((status = 200, body = ImportReport), Invalid))]
async fn import_shipping(auth: StaffAuth, Json(body): Json<ShippingImport>) -> ApiResult<Json<ImportReport>> {
    auth.require(Permission::OrdersWrite)?;
    Ok(Json(staff_orders::import_shipping(&auth.state.db, &auth.tenant, &auth.actor(), &body.csv).await?))
}

/// One order. Needs `orders_read`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/staff/orders/{id}", tag = "mall", security(("staff_jwt" = [])),
    params(TenantSlug, ("id" = i64, Path, description = "order id")),
    responses((status = 200, body = Order), NotFound))]
async fn get_order(auth: StaffAuth, PathId(id): PathId<OrderId>) -> ApiResult<Json<Order>> {
    Ok(Json(auth.read(Permission::OrdersRead, async |tx| orders::get(tx, id).await).await?))
}

/// Moves an order: `approve` (pending review), `ship` (needs carrier and tracking_no),
/// `cancel` (before shipment) or `refund` (after-sales). Illegal moves are a 409.
/// Needs `orders_write`; audited.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/orders/{id}/{action}", tag = "mall",
    security(("staff_jwt" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("id" = i64, Path, description = "order id"),
        ("action" = String, Path, description = "approve, ship, cancel or refund", pattern = "^(?:approve|ship|cancel|refund)$")),
    request_body = ActionBody, responses((status = 200, body = Order), NotFound, Conflict, Invalid))]
async fn order_action(
    auth: StaffAuth,
    Path((_t, id, action)): Path<(String, OrderId, String)>,
    raw: axum::body::Bytes,
) -> ApiResult<Json<Order>> {
    auth.require(Permission::OrdersWrite)?;
    // The body is optional (cancel and refund need none).
    let body: ActionBody =
        if raw.iter().all(u8::is_ascii_whitespace) { ActionBody::default() } else { crate::input::parse_bytes(&raw)? };
    let action = staff_orders::action(&action)?;
    let order = auth
        .state
        .db
        .write(&auth.tenant, &auth.actor(), async |tx| staff_orders::act(tx, id, action, body).await)
        .await?;
    auth.state.drain_soon(&auth.tenant);
    Ok(Json(order))
}

#[derive(Serialize, utoipa::ToSchema)]
struct Secret {
    /// HMAC-SHA256 key of the payment callback; shown once.
    secret: String,
}

/// Creates (or replaces) the secret the merchant's checkout signs payment callbacks
/// with. Needs `settings_write` (owner); audited.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/staff/payment-secret", tag = "mall", security(("staff_jwt" = [])),
    params(TenantSlug), responses((status = 201, body = Secret), Forbidden))]
async fn payment_secret(auth: StaffAuth) -> ApiResult<(StatusCode, Json<Secret>)> {
    let vault = &auth.state.vault;
    let secret = auth.write(Permission::SettingsWrite, async |tx| payments::rotate_secret(tx, vault).await).await?;
    Ok((StatusCode::CREATED, Json(Secret { secret })))
}
